//! Runware `videoInference`: wire types, validation against the model page,
//! and the HTTP client (submit, poll).

pub mod client;
pub mod models;
pub mod spec;
pub mod types;
pub mod validate;

pub use client::{
    poll_delay, ClientConfig, ClientError, PollOutcome, RunwareClient, SubmitOutcome,
};
pub use models::{ModelSpec, KLING_O3_4K};
pub use types::{
    ApiError, Element, Envelope, FrameImage, FramePosition, GenerationRequest, GetResponseTask,
    Inputs, KlingSettings, OneOrMany, OutputFormat, PositionedFrameImage, PromptSegment,
    ProviderSettings, Safety, SafetyMode, TaskItem, TaskStatus, VideoInferenceTask,
};
pub use validate::{
    parse_and_validate_generation, parse_and_validate_task, parse_generation, parse_task,
    validate_generation, validate_task, FieldError,
};
