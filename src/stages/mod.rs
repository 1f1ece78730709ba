//! The stages of a variation's life, one module each, found by name:
//!
//! | state(s) | module | what it decides |
//! |---|---|---|
//! | `requested` | [`submit`] | the Runware task is accepted (or refused) |
//! | `submitted`, `generating` | [`generation`] | the generator delivered, failed, or ran out of time |
//! | (arrival) | [`arrival`] | the master is there, readable and what was asked for |
//! | `arrived`, `transcoding` | [`transcode`] | one ffmpeg pass wrote every output |
//! | `checking` | [`check`] | QC passes, is remediated once, or rejects |
//! | `publishing` | [`publish`] | the set is live on the CDN |
//! | `published` | [`expire`] | the TTL ran out and the set is gone |
//!
//! Each stage takes a [`Ctx`] and the variation and returns an [`Outcome`];
//! [`crate::jobs::Pipeline::step`] loads the row, dispatches and applies the
//! outcome in one place, which is also the only place that turns an internal
//! error into text a client sees. The media halves of arrival, transcode and
//! check are plain functions that `reelay process` calls too.

pub mod arrival;
pub mod cancel;
pub mod check;
pub mod expire;
pub mod generation;
pub mod publish;
pub mod submit;
pub mod transcode;

use crate::config::{ProfileSettings, Settings};
use crate::jobs::model::{Asset, Brief, Update, Variation};
use crate::jobs::progress::ProgressCell;
use crate::jobs::store::JobStore;
use crate::media::process::Runner;
use crate::policy::{Container, MasterSpec};
use crate::reason::ReasonCode;
use crate::runware::client::RunwareClient;
use crate::storage::ObjectStore;
use std::path::{Path, PathBuf};

pub use crate::reason::INTERNAL_MESSAGE;

/// A delivery profile resolved once: its name (for reports) and its
/// settings, so no stage can read a missing profile as "no loudness".
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    pub name: &'a str,
    pub settings: &'a ProfileSettings,
}

impl<'a> Profile<'a> {
    pub fn resolve(settings: &'a Settings, name: &'a str) -> Option<Self> {
        settings
            .profiles
            .get(name)
            .map(|p| Profile { name, settings: p })
    }
}

/// The failure of a variation whose profile was removed from the
/// configuration since it was requested.
pub fn unknown_profile(asset: &Asset) -> Outcome {
    Outcome::fail(
        ReasonCode::UnknownProfile,
        format!(
            "the asset's profile {:?} is no longer configured",
            asset.profile
        ),
    )
}

/// What a stage needs from the rest of reelay.
pub struct Ctx<'a> {
    pub store: &'a dyn JobStore,
    pub objects: &'a ObjectStore,
    pub runware: &'a RunwareClient,
    pub runner: &'a Runner,
    pub settings: &'a Settings,
    /// Base URL the generator reaches reelay at (webhooks).
    pub public_url: &'a str,
    /// Base URL of published files.
    pub cdn_base: &'a str,
    pub work_dir: &'a Path,
    pub webhook_secret: &'a [u8],
    /// Where a long step reports progress (the lease heartbeat writes it).
    pub progress: ProgressCell,
}

impl Ctx<'_> {
    /// The variation's own work folder.
    pub fn work(&self, v: &Variation) -> PathBuf {
        self.work_dir.join(&v.id)
    }
}

/// What a stage decided.
#[derive(Debug)]
pub enum Outcome {
    /// Record the update; its `state`, when set, is where the variation goes.
    Advance(Update),
    /// Stay in this state and run again at `at` (unix ms), recording the update.
    Wait { at: i64, update: Update },
    /// The media does not meet the request or the policy: `rejected`.
    Reject {
        code: ReasonCode,
        message: String,
        record: Update,
    },
    /// Something outside the media failed for good: `failed`.
    Fail {
        code: ReasonCode,
        message: String,
        record: Update,
    },
    /// A transient error: run again after a backoff. Its cause chain goes to
    /// the log only.
    Retry(anyhow::Error),
    /// Nothing to write: the lease was lost during the stage.
    Abandoned,
}

impl Outcome {
    pub fn advance(update: Update) -> Self {
        Outcome::Advance(update)
    }

    pub fn reject(code: ReasonCode, message: impl Into<String>) -> Self {
        Outcome::Reject {
            code,
            message: message.into(),
            record: Update::default(),
        }
    }

    pub fn fail(code: ReasonCode, message: impl Into<String>) -> Self {
        Outcome::Fail {
            code,
            message: message.into(),
            record: Update::default(),
        }
    }

    /// The same rejection or failure, also recording `record`.
    pub fn recording(self, with: Update) -> Self {
        match self {
            Outcome::Reject { code, message, .. } => Outcome::Reject {
                code,
                message,
                record: with,
            },
            Outcome::Fail { code, message, .. } => Outcome::Fail {
                code,
                message,
                record: with,
            },
            other => other,
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Outcome {
    fn from(e: E) -> Self {
        Outcome::Retry(e.into())
    }
}

/// Turns a stage's `?` on internal errors into a retry.
#[macro_export]
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::stages::Outcome::from(e),
        }
    };
    ($e:expr, $ctx:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::stages::Outcome::Retry(anyhow::Error::from(e).context($ctx)),
        }
    };
}

/// Text fit for a client: file paths lose their folders (a stage's message
/// may quote ffmpeg) and it stays one short paragraph.
pub fn client_text(message: &str) -> String {
    const MAX: usize = 1000;
    let mut out = crate::media::process::hide_folders(&message.replace(['\n', '\r'], " "));
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// What the master must be: the generation's request, or for a master
/// uploaded by hand, what its own probe found at arrival.
pub fn master_spec(asset: &Asset, v: &Variation) -> Option<MasterSpec> {
    match &asset.brief {
        Brief::Generation(req) => Some(req.master_spec()),
        Brief::Upload { .. } => {
            let probe = v.master_probe.as_ref()?;
            Some(MasterSpec::from_probe(
                probe,
                Container::of_upload(&v.master_key, probe),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
