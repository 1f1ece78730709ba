//! Placeholder; replaced by the reason-code module on merge.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    MasterSize,
    MasterMissing,
    MasterMismatch,
    MasterUnreadable,
    MasterIncomplete,
    TranscodeFailed,
    MeasureFailed,
    QcFailed,
    InvalidOutputs,
    KeyTooLong,
    TtlExpired,
    TimeoutProvider,
    ProviderUnavailable,
    ProviderRejected,
    ProviderError,
    UploadUrlExpired,
    UploadMissing,
    Internal,
    Cancelled,
    UnknownProfile,
    Generator(String),
}

impl ReasonCode {
    pub fn as_str(&self) -> &str {
        match self {
            Self::MasterSize => "masterSize",
            Self::MasterMissing => "masterMissing",
            Self::MasterMismatch => "masterMismatch",
            Self::MasterUnreadable => "masterUnreadable",
            Self::MasterIncomplete => "masterIncomplete",
            Self::TranscodeFailed => "transcodeFailed",
            Self::MeasureFailed => "measureFailed",
            Self::QcFailed => "qcFailed",
            Self::InvalidOutputs => "invalidOutputs",
            Self::KeyTooLong => "keyTooLong",
            Self::TtlExpired => "ttlExpired",
            Self::TimeoutProvider => "timeoutProvider",
            Self::ProviderUnavailable => "providerUnavailable",
            Self::ProviderRejected => "providerRejected",
            Self::ProviderError => "providerError",
            Self::UploadUrlExpired => "uploadUrlExpired",
            Self::UploadMissing => "uploadMissing",
            Self::Internal => "internalError",
            Self::Cancelled => "cancelled",
            Self::UnknownProfile => "unknownProfile",
            Self::Generator(c) => c,
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReasonCode {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FIXED: [ReasonCode; 20] = [
            ReasonCode::MasterSize,
            ReasonCode::MasterMissing,
            ReasonCode::MasterMismatch,
            ReasonCode::MasterUnreadable,
            ReasonCode::MasterIncomplete,
            ReasonCode::TranscodeFailed,
            ReasonCode::MeasureFailed,
            ReasonCode::QcFailed,
            ReasonCode::InvalidOutputs,
            ReasonCode::KeyTooLong,
            ReasonCode::TtlExpired,
            ReasonCode::TimeoutProvider,
            ReasonCode::ProviderUnavailable,
            ReasonCode::ProviderRejected,
            ReasonCode::ProviderError,
            ReasonCode::UploadUrlExpired,
            ReasonCode::UploadMissing,
            ReasonCode::Internal,
            ReasonCode::Cancelled,
            ReasonCode::UnknownProfile,
        ];
        Ok(FIXED
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or_else(|| ReasonCode::Generator(s.to_string())))
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or(ReasonCode::Internal))
    }
}
