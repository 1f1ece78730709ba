//! Fault injection for the Runware simulator.
//!
//! Faults come from `[simulator.faults]` in the config (every task and call)
//! and, per request, from the `X-Reelay-Sim-Fault` header, which is reserved
//! for tests. The header holds either a JSON object or a `key=value` list
//! (`fail_code=timeoutProvider, burst_status=503, burst_count=2`) with the
//! same keys as the config table; its keys override the config's for that
//! request and for the tasks it creates. A task keeps the faults it was
//! created with (they are persisted with it), so a restart does not heal it.
//! Over WebSocket the header (or a `fault` query parameter) of the upgrade
//! request applies to every call and task of that connection.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The request header that carries per-request faults.
pub const FAULT_HEADER: &str = "x-reelay-sim-fault";

/// Which calls a 429/503 burst answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BurstOn {
    /// `videoInference` submits only.
    #[default]
    Submit,
    /// `getResponse` polls only.
    Poll,
    /// Both.
    All,
}

/// What happens to the `uploadEndpoint` PUT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadFault {
    /// The whole file.
    #[default]
    Full,
    /// Only the first half of the bytes (a complete PUT of a cut file).
    Truncated,
    /// No PUT at all; the task still reports success.
    None,
}

/// How the result webhook is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFault {
    /// Once (retried on non-2xx along `simulator.webhook_retry_ms`).
    #[default]
    Once,
    /// Never.
    None,
    /// The same body twice, each delivery retried on its own.
    Twice,
}

/// Where a task failure is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorShape {
    /// In `errors[]` (the documented shape).
    #[default]
    Errors,
    /// As a `data` item with `status: "error"` and a nested `error` object
    /// (the newer schema's shape, handled by the official SDKs).
    Data,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Milliseconds before a `videoInference` submit is answered. The task is
    /// registered first, so a client that times out and retries meets
    /// `conflictTaskUUID`.
    pub ack_delay_ms: u64,
    /// Milliseconds before a `getResponse` poll is answered.
    pub poll_delay_ms: u64,
    /// WebSocket only: the connection a task was submitted on is dropped (no
    /// close frame) this long after the ack, if the task is still running.
    /// 0: never.
    pub drop_connection_ms: u64,
    /// Submits are refused with HTTP 402 `insufficientCredits`; no task is created.
    pub insufficient_credits: bool,
    /// HTTP status of a burst (429, 503, ...); 0 = no burst.
    pub burst_status: u16,
    /// Calls answered `burst_status` before the real answer, counted per
    /// taskUUID and kind of call.
    pub burst_count: u32,
    /// Which calls the burst hits.
    pub burst_on: BurstOn,
    /// Submits only: create the task, then answer the burst status anyway
    /// (a gateway that fails after the backend accepted the task).
    pub burst_after_create: bool,
    /// End the task in an error with this code (e.g. `timeoutProvider`,
    /// `providerError`, `contentPolicyViolation`) instead of rendering. Empty: none.
    pub fail_code: String,
    /// Message of that error. Empty: a stock message for the code.
    pub fail_message: String,
    /// The task never finishes: it stays `processing`.
    pub stall: bool,
    /// What happens to the PUT to `uploadEndpoint`.
    pub upload: UploadFault,
    /// Render this size instead of the requested one, e.g. "1920x1080". Empty: as requested.
    pub deliver_size: String,
    /// Render with this seed instead of a random one, so a test gets the
    /// same clip every run (the seed picks the picture source: see
    /// `media::synth`). Unset: random, as the real service does.
    pub seed: Option<u32>,
    /// How the result webhook is delivered.
    pub webhook: WebhookFault,
    /// Where task failures are reported (getResponse and webhook).
    pub error_shape: ErrorShape,
    /// Task faults apply only to the first N tasks this simulator creates;
    /// later tasks are healthy. 0: every task.
    pub first_tasks: u32,
}

impl Faults {
    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.burst_status != 0 && !(400..=599).contains(&self.burst_status) {
            return Err(format!(
                "burst_status {} must be an HTTP error status (400-599) or 0",
                self.burst_status
            ));
        }
        if !self.deliver_size.is_empty() && self.deliver_dimensions().is_none() {
            return Err(format!(
                "deliver_size {:?} must be WIDTHxHEIGHT with even numbers of 16-8192",
                self.deliver_size
            ));
        }
        if !self.fail_code.is_empty()
            && !self
                .fail_code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "fail_code {:?} must be a Runware-style code",
                self.fail_code
            ));
        }
        Ok(())
    }

    /// `deliver_size` parsed, when set and valid.
    pub fn deliver_dimensions(&self) -> Option<(u32, u32)> {
        let (w, h) = self.deliver_size.split_once('x')?;
        let (w, h): (u32, u32) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
        let ok = |v: u32| (16..=8192).contains(&v) && v.is_multiple_of(2);
        (ok(w) && ok(h)).then_some((w, h))
    }

    /// The faults that belong to a task (as opposed to a call): a task
    /// beyond `first_tasks` gets none of them.
    pub fn for_task(&self, task_number: u64) -> Faults {
        if self.first_tasks > 0 && task_number > u64::from(self.first_tasks) {
            Faults {
                ack_delay_ms: self.ack_delay_ms,
                poll_delay_ms: self.poll_delay_ms,
                burst_status: self.burst_status,
                burst_count: self.burst_count,
                burst_on: self.burst_on,
                burst_after_create: self.burst_after_create,
                ..Faults::default()
            }
        } else {
            self.clone()
        }
    }

    /// These faults with a header's keys laid over them.
    pub fn with_header(&self, header: &str) -> Result<Faults, String> {
        let overrides = parse_header(header)?;
        let mut base = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let Value::Object(map) = &mut base {
            map.extend(overrides);
        }
        let merged: Faults =
            serde_json::from_value(base).map_err(|e| format!("{FAULT_HEADER}: {e}"))?;
        merged
            .validate()
            .map_err(|e| format!("{FAULT_HEADER}: {e}"))?;
        Ok(merged)
    }

    /// The stock message for a failure code, like the real service's.
    pub fn failure_message(&self) -> String {
        if !self.fail_message.is_empty() {
            return self.fail_message.clone();
        }
        match self.fail_code.as_str() {
            "timeoutProvider" => "The external provider did not respond within the timeout window. The request was automatically terminated.".into(),
            "contentPolicyViolation" => "The request was blocked by the provider's content policy.".into(),
            "providerError" => "The external provider returned an error while generating the video.".into(),
            other => format!("The task failed ({other})."),
        }
    }
}

/// A JSON object, or `key=value` items separated by `,` or `;` whose values
/// are read as JSON when they parse (numbers, booleans) and as strings otherwise.
fn parse_header(header: &str) -> Result<Map<String, Value>, String> {
    let h = header.trim();
    if h.starts_with('{') {
        return match serde_json::from_str::<Value>(h) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(format!("{FAULT_HEADER} is not a JSON object")),
        };
    }
    let mut out = Map::new();
    for item in h.split([',', ';']).map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!(
                "{FAULT_HEADER}: {item:?} is not key=value (or send a JSON object)"
            ));
        };
        let v = v.trim();
        let value = match serde_json::from_str::<Value>(v) {
            Ok(x @ (Value::Number(_) | Value::Bool(_))) => x,
            _ => Value::String(v.trim_matches('"').to_string()),
        };
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_key_values_override_the_config() {
        let base = Faults {
            ack_delay_ms: 5,
            fail_code: "providerError".into(),
            ..Faults::default()
        };
        let f = base
            .with_header("fail_code=timeoutProvider, burst_status=503; burst_count=2, burst_on=all, webhook=twice, stall=true")
            .unwrap();
        assert_eq!(f.fail_code, "timeoutProvider");
        assert_eq!((f.burst_status, f.burst_count), (503, 2));
        assert_eq!(f.burst_on, BurstOn::All);
        assert_eq!(f.webhook, WebhookFault::Twice);
        assert!(f.stall);
        assert_eq!(
            f.ack_delay_ms, 5,
            "keys the header lacks keep the config's value"
        );
    }

    #[test]
    fn header_json_form_works_and_bad_headers_are_refused() {
        let f = Faults::default()
            .with_header(
                r#"{"upload": "truncated", "deliver_size": "1920x1080", "error_shape": "data"}"#,
            )
            .unwrap();
        assert_eq!(f.upload, UploadFault::Truncated);
        assert_eq!(f.deliver_dimensions(), Some((1920, 1080)));
        assert_eq!(f.error_shape, ErrorShape::Data);
        for bad in [
            "nonsense",
            "no_such_fault=1",
            "upload=sideways",
            "burst_status=200",
            "deliver_size=1921x1080",
            "fail_code=a b",
            "[1]",
        ] {
            assert!(Faults::default().with_header(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn task_faults_stop_after_first_tasks_but_call_faults_stay() {
        let f = Faults {
            upload: UploadFault::None,
            burst_status: 503,
            burst_count: 1,
            first_tasks: 1,
            ..Faults::default()
        };
        assert_eq!(f.for_task(1).upload, UploadFault::None);
        let later = f.for_task(2);
        assert_eq!(later.upload, UploadFault::Full);
        assert_eq!(later.burst_status, 503);
        assert_eq!(Faults::default().for_task(9), Faults::default());
    }
}
