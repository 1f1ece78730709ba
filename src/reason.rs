//! The reason codes a client sees: `reason.code` of a variation in
//! `GET /v1/assets/{id}` and in callbacks, when it is rejected, fails,
//! expires or is cancelled. The strings are API: they never change.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// Declares the fixed codes once, so the variant's doc line, `meaning()`,
/// the wire string and `ALL` cannot drift apart.
macro_rules! reason_codes {
    ($( #[doc = $meaning:literal] $variant:ident = $code:literal, )*) => {
        /// Why a variation did not (or no longer does) deliver.
        ///
        /// Every fixed variant serialises as its camelCase code. A failure
        /// the generator explained with its own error code keeps that code
        /// verbatim as [`ReasonCode::Generator`] (e.g. `invalidApiKey`):
        /// clients already match on Runware's codes, so reelay passes them
        /// through rather than folding them into one of its own.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ReasonCode {
            $( #[doc = $meaning] $variant, )*
            /// The generator's own error code, verbatim (`invalidApiKey`,
            /// `invalidPositivePrompt`...). Build it with
            /// [`ReasonCode::from_generator`] (or `parse`), so a code that
            /// is one of reelay's own becomes the fixed variant and equal
            /// strings compare equal.
            Generator(String),
        }

        impl ReasonCode {
            /// The fixed codes, in the README table's order.
            pub const ALL: &'static [ReasonCode] = &[$( ReasonCode::$variant, )*];

            /// The code as the API shows it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ReasonCode::$variant => $code, )*
                    ReasonCode::Generator(code) => code,
                }
            }

            /// One line for people: what the code means.
            pub fn meaning(&self) -> &'static str {
                match self {
                    // rustdoc keeps the space after `///`.
                    $( ReasonCode::$variant => $meaning.trim_ascii_start(), )*
                    ReasonCode::Generator(_) => {
                        "The generator failed the task with this error code of its own."
                    }
                }
            }

            fn fixed(code: &str) -> Option<ReasonCode> {
                match code {
                    $( $code => Some(ReasonCode::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    /// The master is empty or larger than the configured maximum.
    MasterSize = "masterSize",
    /// The master uploaded by hand is no longer in the bucket.
    MasterMissing = "masterMissing",
    /// ffprobe cannot read the master.
    MasterUnreadable = "masterUnreadable",
    /// The master is truncated or corrupt.
    MasterIncomplete = "masterIncomplete",
    /// The master has no video or does not match the request (container, codec, resolution, duration, sound).
    MasterMismatch = "masterMismatch",
    /// The profile is not configured: a master uploaded by hand names an unknown one, or the asset's profile was removed from the configuration before its transcode or check.
    UnknownProfile = "unknownProfile",
    /// ffmpeg could not plan, measure the loudness of, or transcode the master.
    TranscodeFailed = "transcodeFailed",
    /// Measuring the renditions' quality against the master failed.
    MeasureFailed = "measureFailed",
    /// The master or a rendition failed a QC rule; the message names every failed check.
    QcFailed = "qcFailed",
    /// The outputs do not make a set that can be published.
    InvalidOutputs = "invalidOutputs",
    /// A CDN key would be longer than the object store accepts.
    KeyTooLong = "keyTooLong",
    /// The asset's ttl, counted from the master's arrival, ran out.
    TtlExpired = "ttlExpired",
    /// The generator did not deliver in time (reelay's task deadline or the generator's own timeout).
    TimeoutProvider = "timeoutProvider",
    /// The task could not be submitted to the generator before the deadline.
    ProviderUnavailable = "providerUnavailable",
    /// The generator refused the task without an error code.
    ProviderRejected = "providerRejected",
    /// The generator reported that the task failed.
    ProviderError = "providerError",
    /// No master was uploaded before the presigned upload URL expired.
    UploadUrlExpired = "uploadUrlExpired",
    /// The generator reported success but no master reached the bucket.
    UploadMissing = "uploadMissing",
    /// ffmpeg made no progress for `media.stall_secs` on every attempt of a step (`worker.max_step_errors`); each time it was stopped.
    Stalled = "stalled",
    /// reelay could not process this variation (a step kept failing after its retries, or its stored row does not decode); the cause is in reelay's log.
    InternalError = "internalError",
    /// The asset was cancelled (`DELETE /v1/assets/{id}`) before this variation finished, or after it was published (its CDN files were taken down).
    Cancelled = "cancelled",
}

/// The reason text of a variation that failed inside reelay
/// ([`ReasonCode::InternalError`]): the cause is in the log, never in the API.
pub const INTERNAL_MESSAGE: &str =
    "reelay could not process this variation; the cause is in reelay's log";

impl ReasonCode {
    /// The reason for a generator's error `code`: one of reelay's fixed
    /// codes when it is one (Runware also says `timeoutProvider` and
    /// `providerError`), else the code itself.
    pub fn from_generator(code: &str) -> Self {
        Self::fixed(code).unwrap_or_else(|| ReasonCode::Generator(code.to_owned()))
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Never fails: a code reelay does not know is the generator's.
impl FromStr for ReasonCode {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_generator(s))
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Ok(Self::fixed(&code).unwrap_or(ReasonCode::Generator(code)))
    }
}

/// A string: one of reelay's own codes (listed, each with its meaning) or,
/// for a generator failure, the generator's own code verbatim.
impl utoipa::PartialSchema for ReasonCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let known: Vec<String> = ReasonCode::ALL
            .iter()
            .map(|c| format!("`{}`: {}", c.as_str(), c.meaning()))
            .collect();
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!(
                "reelay's codes: {}. Any other value is the generator's own error code, verbatim.",
                known.join("; ")
            )))
            .examples(
                ReasonCode::ALL
                    .iter()
                    .map(|c| serde_json::json!(c.as_str())),
            )
            .into()
    }
}

impl utoipa::ToSchema for ReasonCode {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const README: &str = include_str!("../README.md");

    /// The README's reason-code table: code -> meaning.
    fn readme_table() -> BTreeMap<String, String> {
        let section = README
            .split("\n### Reason codes\n")
            .nth(1)
            .expect("README has a `### Reason codes` section");
        let section = section.split("\n#").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .map(|row| {
                let (code, rest) = row.split_once('`').expect("a code cell");
                let meaning = rest
                    .trim()
                    .strip_prefix('|')
                    .and_then(|m| m.trim().strip_suffix('|'))
                    .expect("| `code` | meaning |");
                (code.to_owned(), meaning.trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_readme_table_lists_exactly_the_fixed_codes_with_their_meaning() {
        let table = readme_table();
        let missing: Vec<&str> = ReasonCode::ALL
            .iter()
            .map(ReasonCode::as_str)
            .filter(|c| !table.contains_key(*c))
            .collect();
        assert!(missing.is_empty(), "not in the README table: {missing:?}");
        let unknown: Vec<&String> = table
            .keys()
            .filter(|c| ReasonCode::fixed(c).is_none())
            .collect();
        assert!(
            unknown.is_empty(),
            "in the README but not the enum: {unknown:?}"
        );
        for code in ReasonCode::ALL {
            assert_eq!(
                table[code.as_str()],
                code.meaning(),
                "the meaning of {code} differs between the README and the enum"
            );
        }
    }

    #[test]
    fn fixed_codes_round_trip_through_every_form() {
        assert_eq!(ReasonCode::ALL.len(), 21);
        for code in ReasonCode::ALL {
            let s = code.as_str();
            assert!(
                s.chars().next().unwrap().is_ascii_lowercase() && !s.contains(['_', ' ', '-']),
                "{s} is not camelCase"
            );
            assert_eq!(code.to_string(), s);
            assert_eq!(s.parse::<ReasonCode>().unwrap(), *code);
            assert_eq!(code.to_string(), s);
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(s.into()));
            assert_eq!(serde_json::from_value::<ReasonCode>(json).unwrap(), *code);
            assert!(!code.meaning().is_empty() && !code.meaning().starts_with(' '));
        }
        let mut seen: Vec<&str> = ReasonCode::ALL.iter().map(ReasonCode::as_str).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), ReasonCode::ALL.len(), "a code is listed twice");
    }

    #[test]
    fn todays_strings_are_kept() {
        let pairs = [
            (ReasonCode::MasterMismatch, "masterMismatch"),
            (ReasonCode::MasterSize, "masterSize"),
            (ReasonCode::MasterMissing, "masterMissing"),
            (ReasonCode::MasterUnreadable, "masterUnreadable"),
            (ReasonCode::MasterIncomplete, "masterIncomplete"),
            (ReasonCode::UnknownProfile, "unknownProfile"),
            (ReasonCode::TranscodeFailed, "transcodeFailed"),
            (ReasonCode::MeasureFailed, "measureFailed"),
            (ReasonCode::QcFailed, "qcFailed"),
            (ReasonCode::InvalidOutputs, "invalidOutputs"),
            (ReasonCode::KeyTooLong, "keyTooLong"),
            (ReasonCode::TtlExpired, "ttlExpired"),
            (ReasonCode::TimeoutProvider, "timeoutProvider"),
            (ReasonCode::ProviderUnavailable, "providerUnavailable"),
            (ReasonCode::ProviderRejected, "providerRejected"),
            (ReasonCode::ProviderError, "providerError"),
            (ReasonCode::UploadUrlExpired, "uploadUrlExpired"),
            (ReasonCode::UploadMissing, "uploadMissing"),
            (ReasonCode::InternalError, "internalError"),
            (ReasonCode::Cancelled, "cancelled"),
        ];
        for (code, s) in pairs {
            assert_eq!(code.as_str(), s);
        }
    }

    #[test]
    fn the_generators_own_codes_pass_through_verbatim() {
        let code: ReasonCode = "invalidApiKey".parse().unwrap();
        assert_eq!(code, ReasonCode::Generator("invalidApiKey".into()));
        assert_eq!(code.as_str(), "invalidApiKey");
        assert_eq!(code.to_string(), "invalidApiKey");
        assert_eq!(code.to_string(), "invalidApiKey");
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""invalidApiKey""#);
        let back: ReasonCode = serde_json::from_str(r#""invalidApiKey""#).unwrap();
        assert_eq!(back, code);
        assert!(!ReasonCode::ALL.contains(&code));
        // Runware's timeoutProvider is reelay's too: one code, not two.
        assert_eq!(
            ReasonCode::from_generator("timeoutProvider"),
            ReasonCode::TimeoutProvider
        );
        let back: ReasonCode = serde_json::from_str(r#""providerError""#).unwrap();
        assert_eq!(back, ReasonCode::ProviderError);
    }
}
