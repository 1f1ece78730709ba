//! Wire types for Runware's `videoInference` task and its responses.
//!
//! Request-side types deny unknown fields: the provider page is our contract,
//! and a typo must fail loudly instead of being dropped. Response-side types
//! accept anything extra and degrade odd values to `None`, because a provider
//! adding a field must not break polling.
//!
//! The two sides live in their own files (`request`, `response`); every item
//! is re-exported here, so `runware::types::X` paths hold.

mod lenient;
mod params;
mod request;
mod response;

pub(crate) use params::ParamsView;
pub use request::*;
pub use response::*;

pub const TASK_TYPE_VIDEO_INFERENCE: &str = "videoInference";
pub const TASK_TYPE_GET_RESPONSE: &str = "getResponse";
pub const OUTPUT_TYPE_URL: &str = "URL";
pub const DELIVERY_ASYNC: &str = "async";
/// Seconds the provider renders when `duration` is absent.
pub const DEFAULT_DURATION: u32 = 5;
pub const DEFAULT_OUTPUT_QUALITY: u32 = 95;
pub const DEFAULT_NUMBER_RESULTS: u32 = 1;

#[cfg(test)]
mod tests;
