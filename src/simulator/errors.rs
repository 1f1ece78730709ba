//! Runware-style error objects for validation failures: code, parameter,
//! type, allowed values and documentation anchor, as the real service
//! answers them.

use super::*;

/// The parameter's type as Runware's error objects name it.
pub(super) fn param_type(path: &str) -> Option<&'static str> {
    let last = path.rsplit('.').next().unwrap_or(path);
    let (name, indexed) = match last.split_once('[') {
        Some((n, _)) => (n, true),
        None => (last, false),
    };
    if indexed {
        return Some(match name {
            "multiPrompt" | "elements" => "object",
            _ => "string",
        });
    }
    Some(match name {
        "duration" | "width" | "height" | "numberResults" | "outputQuality" | "ttl" => "integer",
        "checkContent" | "sound" | "includeCost" => "boolean",
        "frameImages" | "referenceVideos" | "elements" | "multiPrompt" | "images" | "videos"
        | "voices" | "tags" => "array",
        "inputs" | "safety" | "providerSettings" | "klingai" => "object",
        "frame" => "string|integer",
        "positivePrompt" | "prompt" | "model" | "outputType" | "outputFormat"
        | "deliveryMethod" | "resolution" | "uploadEndpoint" | "webhookURL" | "mode" | "video"
        | "id" | "image" | "frontalImage" | "taskType" => "string",
        _ => return None,
    })
}

/// The values a parameter accepts, where they are a short list.
pub(super) fn allowed_values(path: &str, model: &ModelSpec) -> Option<Vec<Value>> {
    let last = path.rsplit('.').next().unwrap_or(path);
    Some(match last {
        "width" | "height" => model.sizes.iter().map(|s| json!(s)).collect(),
        "duration" => (model.min_duration..=model.max_duration)
            .map(|d| json!(d))
            .collect(),
        "numberResults" => (1..=4).map(|n| json!(n)).collect(),
        "outputFormat" => vec![json!("MP4"), json!("WEBM"), json!("MOV")],
        "outputType" => vec![json!("URL")],
        "deliveryMethod" => vec![json!("async")],
        "mode" => vec![json!("none"), json!("fast"), json!("full")],
        "resolution" => model.resolutions.iter().map(|r| json!(r)).collect(),
        "model" => vec![json!(model.air)],
        "frame" => vec![json!("first"), json!("last"), json!(0), json!(-1)],
        _ => return None,
    })
}

/// One validation failure as Runware answers it.
pub(super) fn validation_error(
    f: &FieldError,
    task_uuid: Option<Uuid>,
    model: &ModelSpec,
) -> ApiError {
    let mut e = err(
        &code_for(&f.path, &f.rule),
        format!("Invalid value for {} parameter: {}", f.path, f.rule),
    );
    let anchor = f
        .path
        .split(['.', '['])
        .next()
        .unwrap_or(&f.path)
        .to_ascii_lowercase();
    e.documentation = Some(format!("{DOCS}#request-{anchor}"));
    e.parameter = Some(f.path.clone());
    e.param_type = param_type(&f.path).map(str::to_string);
    e.allowed_values = allowed_values(&f.path, model);
    e.task_uuid = task_uuid;
    e.task_type = Some("videoInference".into());
    e
}

/// Runware-style error code for a parameter: `invalidDuration`, or
/// `missingPositivePrompt` when a required one is absent.
pub(super) fn code_for(path: &str, rule: &str) -> String {
    let field = path
        .rsplit('.')
        .next()
        .unwrap_or(path)
        .split('[')
        .next()
        .unwrap_or(path);
    let prefix = if rule.starts_with("is required") {
        "missing"
    } else {
        "invalid"
    };
    let mut c = field.chars();
    match c.next() {
        Some(first) => format!("{prefix}{}{}", first.to_ascii_uppercase(), c.as_str()),
        None => "invalidParameter".into(),
    }
}
