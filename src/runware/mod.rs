//! Runware `videoInference`: wire types, validation against the model page,
//! and the HTTP client (submit, poll).

pub mod models;

pub use models::{ModelSpec, KLING_O3_4K};
