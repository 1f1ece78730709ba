//! Checks a generation request (reelay's API) or a `videoInference` task
//! (the simulator's side) against the provider page and a [`ModelSpec`].
//!
//! Both entry points run the same rule code over a shared view, so reelay's
//! API and its simulator refuse the same things, before anything is paid for.
//! Every violation is reported, each with the JSON path of the field.
//!
//! Decisions where the provider is silent or loose (see the protocol doc, §2.2):
//! - `width`/`height` may accompany `inputs.frameImages`; reelay needs a known
//!   output size to check the upload, so they are required unless
//!   `inputs.video` gives the size (or `resolution` is set, which itself
//!   requires `inputs.video`).
//! - `inputs.video` excludes `width`/`height`, `duration` and `inputs.frameImages`
//!   (the edit keeps the input's size and length).
//! - A frame image without `frame` takes its place in the list: the first
//!   item is the first frame, the second the last.

use super::models::ModelSpec;
use super::types::{GenerationRequest, VideoInferenceTask, TASK_TYPE_VIDEO_INFERENCE};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// One violated rule: where (`generation.inputs.elements[0].images`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub rule: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.rule)
    }
}

mod parse;
mod refs;
mod rules;

use parse::parse_at;
use refs::is_http_url;
pub use refs::is_image_ref;
use rules::check_params;

/// Decodes the `generation` object, reporting a wrong type or unknown field
/// with its full path (e.g. `generation.providerSettings.klingai.multiPrompt[2].duration`).
pub fn parse_generation(value: &Value, prefix: &str) -> Result<GenerationRequest, Vec<FieldError>> {
    parse_at(value, prefix)
}

/// Decodes a task object as the simulator receives it (paths without prefix).
pub fn parse_task(value: &Value) -> Result<VideoInferenceTask, Vec<FieldError>> {
    parse_at(value, "")
}

/// All violations of a user request, paths under `prefix`.
pub fn validate_generation(
    req: &GenerationRequest,
    model: &ModelSpec,
    prefix: &str,
) -> Result<(), Vec<FieldError>> {
    let mut c = Checker::new(prefix);
    check_params(&req.view(), model, &mut c);
    c.finish()
}

/// All violations of a task: the request rules plus the fields reelay fills
/// in (taskType, taskUUID, deliveryMethod, uploadEndpoint, webhookURL).
pub fn validate_task(task: &VideoInferenceTask, model: &ModelSpec) -> Result<(), Vec<FieldError>> {
    let mut c = Checker::new("");
    if task.task_type != TASK_TYPE_VIDEO_INFERENCE {
        c.fail(
            "taskType",
            format!("must be \"{TASK_TYPE_VIDEO_INFERENCE}\""),
        );
    }
    if task.task_uuid.get_version_num() != 4 {
        c.fail("taskUUID", "must be a UUID v4");
    }
    if let Some(url) = &task.upload_endpoint {
        if !is_http_url(url) {
            c.fail("uploadEndpoint", "must be an absolute http(s) URL");
        }
    }
    if let Some(url) = &task.webhook_url {
        if !is_http_url(url) {
            c.fail("webhookURL", "must be an absolute http(s) URL");
        }
    }
    check_params(&task.view(), model, &mut c);
    c.finish()
}

/// [`parse_generation`] then [`validate_generation`]: the one call an API handler needs.
pub fn parse_and_validate_generation(
    value: &Value,
    model: &ModelSpec,
    prefix: &str,
) -> Result<GenerationRequest, Vec<FieldError>> {
    let req = parse_generation(value, prefix)?;
    validate_generation(&req, model, prefix)?;
    Ok(req)
}

/// [`parse_task`] then [`validate_task`], for the simulator.
pub fn parse_and_validate_task(
    value: &Value,
    model: &ModelSpec,
) -> Result<VideoInferenceTask, Vec<FieldError>> {
    let task = parse_task(value)?;
    validate_task(&task, model)?;
    Ok(task)
}

/// Collects every violation under one path prefix.
pub(super) struct Checker<'a> {
    prefix: &'a str,
    errors: Vec<FieldError>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(prefix: &'a str) -> Self {
        Self {
            prefix,
            errors: Vec::new(),
        }
    }

    pub(super) fn fail(&mut self, rel: impl AsRef<str>, rule: impl Into<String>) {
        self.errors.push(FieldError {
            path: join(self.prefix, rel.as_ref()),
            rule: rule.into(),
        });
    }

    pub(super) fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

pub(super) fn join(prefix: &str, rel: &str) -> String {
    match (prefix.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if rel.starts_with('[') => format!("{prefix}{rel}"),
        (false, false) => format!("{prefix}.{rel}"),
    }
}

#[cfg(test)]
use rules::IMAGE_FORMS;

#[cfg(test)]
mod tests;
