//! Runware `videoInference`: wire types, validation against the model page,
//! and the HTTP client (submit, poll).

pub mod models;
pub mod types;

pub use models::{ModelSpec, KLING_O3_4K};
pub use types::{
    ApiError, Element, Envelope, FrameImage, FramePosition, GenerationRequest, GetResponseTask,
    Inputs, KlingSettings, OneOrMany, OutputFormat, PositionedFrameImage, PromptSegment,
    ProviderSettings, Safety, SafetyMode, TaskItem, TaskStatus, VideoInferenceTask,
};
