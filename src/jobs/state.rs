//! The variation state machine's states and which of them a worker acts on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = VariationState)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Accepted from the API; the task is not yet submitted.
    Requested,
    /// Runware acknowledged the task.
    Submitted,
    /// Runware reports the task running.
    Generating,
    /// The master is in our bucket and matches the request.
    Arrived,
    Transcoding,
    Checking,
    Publishing,
    Published,
    /// The media was looked at and does not meet the request or the policy.
    Rejected,
    /// Something outside the media failed (provider error, timeout, expired URL).
    Failed,
    Expired,
    Cancelled,
}

impl State {
    pub const ALL: [State; 12] = [
        State::Requested,
        State::Submitted,
        State::Generating,
        State::Arrived,
        State::Transcoding,
        State::Checking,
        State::Publishing,
        State::Published,
        State::Rejected,
        State::Failed,
        State::Expired,
        State::Cancelled,
    ];

    /// States in which a worker has a step to run.
    pub const ACTIVE: [State; 7] = [
        State::Requested,
        State::Submitted,
        State::Generating,
        State::Arrived,
        State::Transcoding,
        State::Checking,
        State::Publishing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Submitted => "submitted",
            State::Generating => "generating",
            State::Arrived => "arrived",
            State::Transcoding => "transcoding",
            State::Checking => "checking",
            State::Publishing => "publishing",
            State::Published => "published",
            State::Rejected => "rejected",
            State::Failed => "failed",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        !Self::ACTIVE.contains(&self)
    }

    /// Still waiting on the generator (webhooks and S3 events nudge these).
    pub fn awaits_generator(self) -> bool {
        matches!(self, State::Submitted | State::Generating)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        }
    }

    #[test]
    fn only_non_active_states_are_terminal() {
        for s in State::ALL {
            assert_eq!(s.is_terminal(), !State::ACTIVE.contains(&s), "{s}");
        }
    }
}
