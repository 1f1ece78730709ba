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
use super::types::{
    Element, FrameImage, GenerationRequest, ParamsView, VideoInferenceTask, DELIVERY_ASYNC,
    OUTPUT_TYPE_URL, TASK_TYPE_VIDEO_INFERENCE,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

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

const PROMPT_MIN_CHARS: usize = 2;
const PROMPT_MAX_CHARS: usize = 2500;
const NUMBER_RESULTS: (u32, u32) = (1, 4);
const OUTPUT_QUALITY: (u32, u32) = (20, 99);
const TTL_MIN: u32 = 60;
const MAX_FRAME_IMAGES: usize = 2;
const MAX_ELEMENTS: usize = 3;
const MAX_ELEMENT_IMAGES: usize = 3;
const MAX_SEGMENTS: usize = 6;
const MULTI_PROMPT: &str = "providerSettings.klingai.multiPrompt";
const IMAGE_FORMS: &str =
    "must be an image UUID, an http(s) URL, a data:image/...;base64, URI or base64 data";
const VIDEO_FORMS: &str = "must be a UUID or an http(s) URL";
/// Task fields reelay fills in itself; a user who pastes them gets a clear rule.
const RESERVED: [&str; 5] = [
    "taskType",
    "taskUUID",
    "uploadEndpoint",
    "webhookURL",
    "includeCost",
];

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

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

struct Checker<'a> {
    prefix: &'a str,
    errors: Vec<FieldError>,
}

impl<'a> Checker<'a> {
    fn new(prefix: &'a str) -> Self {
        Self {
            prefix,
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, rel: impl AsRef<str>, rule: impl Into<String>) {
        self.errors.push(FieldError {
            path: join(self.prefix, rel.as_ref()),
            rule: rule.into(),
        });
    }

    fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn join(prefix: &str, rel: &str) -> String {
    match (prefix.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if rel.starts_with('[') => format!("{prefix}{rel}"),
        (false, false) => format!("{prefix}.{rel}"),
    }
}

fn check_params(p: &ParamsView<'_>, spec: &ModelSpec, c: &mut Checker<'_>) {
    if let Some(m) = p.model {
        if m != spec.air {
            c.fail("model", format!("must be \"{}\"", spec.air));
        }
    }
    let element_count = p
        .inputs
        .and_then(|i| i.elements.as_ref())
        .map_or(0, Vec::len);
    check_prompts(p, element_count, c);
    check_scalars(p, spec, c);
    check_size(p, spec, c);
    check_inputs(p, c);
    check_multi_prompt(p, element_count, c);
}

fn check_prompts(p: &ParamsView<'_>, element_count: usize, c: &mut Checker<'_>) {
    match (p.positive_prompt, p.multi_prompt()) {
        (None, None) => c.fail(
            "positivePrompt",
            format!("is required unless {MULTI_PROMPT} is given"),
        ),
        (Some(_), Some(_)) => c.fail(
            "positivePrompt",
            format!("give either positivePrompt or {MULTI_PROMPT}, not both"),
        ),
        _ => {}
    }
    if let Some(text) = p.positive_prompt {
        check_prompt_text("positivePrompt", text, element_count, c);
    }
}

fn check_prompt_text(path: &str, text: &str, element_count: usize, c: &mut Checker<'_>) {
    let chars = text.chars().count();
    if text.trim().is_empty() || !(PROMPT_MIN_CHARS..=PROMPT_MAX_CHARS).contains(&chars) {
        c.fail(
            path,
            format!(
                "must be {PROMPT_MIN_CHARS} to {PROMPT_MAX_CHARS} characters and not blank (got {chars})"
            ),
        );
    }
    let bad: Vec<String> = element_refs(text)
        .into_iter()
        .filter(|n| !matches!(n.parse::<usize>(), Ok(i) if (1..=element_count).contains(&i)))
        .map(|n| format!("<<<element_{n}>>>"))
        .collect();
    if !bad.is_empty() {
        let allowed = match element_count {
            0 => "no inputs.elements are given".to_string(),
            1 => "only <<<element_1>>> exists".to_string(),
            n => format!("only <<<element_1>>> to <<<element_{n}>>> exist"),
        };
        c.fail(path, format!("references {} but {allowed}", bad.join(", ")));
    }
}

/// The N of every `<<<element_N>>>` in `text`, as written (deduplicated).
fn element_refs(text: &str) -> Vec<String> {
    const OPEN: &str = "<<<element_";
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        rest = &rest[start + OPEN.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && rest[digits.len()..].starts_with(">>>") && !out.contains(&digits) {
            out.push(digits);
        }
    }
    out
}

fn check_scalars(p: &ParamsView<'_>, spec: &ModelSpec, c: &mut Checker<'_>) {
    if let Some(d) = p.duration {
        if !(spec.min_duration..=spec.max_duration).contains(&d) {
            c.fail(
                "duration",
                format!(
                    "must be a whole number of seconds from {} to {}",
                    spec.min_duration, spec.max_duration
                ),
            );
        }
        if p.input_video().is_some() {
            c.fail(
                "duration",
                "must not be given with inputs.video: the output keeps the input video's length",
            );
        }
    }
    range(c, "numberResults", p.number_results, NUMBER_RESULTS);
    range(c, "outputQuality", p.output_quality, OUTPUT_QUALITY);
    if matches!(p.ttl, Some(t) if t < TTL_MIN) {
        c.fail("ttl", format!("must be at least {TTL_MIN} seconds"));
    }
    if matches!(p.output_type, Some(t) if t != OUTPUT_TYPE_URL) {
        c.fail(
            "outputType",
            format!("must be \"{OUTPUT_TYPE_URL}\", the only output type for video"),
        );
    }
    if matches!(p.delivery_method, Some(d) if d != DELIVERY_ASYNC) {
        c.fail(
            "deliveryMethod",
            format!("must be \"{DELIVERY_ASYNC}\": video tasks are delivered asynchronously"),
        );
    }
}

fn range(c: &mut Checker<'_>, path: &str, value: Option<u32>, (lo, hi): (u32, u32)) {
    if matches!(value, Some(v) if !(lo..=hi).contains(&v)) {
        c.fail(path, format!("must be from {lo} to {hi}"));
    }
}

fn check_size(p: &ParamsView<'_>, spec: &ModelSpec, c: &mut Checker<'_>) {
    let video = p.input_video().is_some();
    let sizes = spec.sizes.join(", ");
    match (p.width, p.height) {
        (Some(w), Some(h)) => {
            if video {
                c.fail(
                    "width",
                    "width and height must not be given with inputs.video: the output keeps the input video's size",
                );
            } else if !spec.allows_size(w, h) {
                c.fail(
                    "width",
                    format!("width x height must be one of {sizes} (got {w}x{h})"),
                );
            }
        }
        (Some(_), None) => c.fail("height", "must be given together with width"),
        (None, Some(_)) => c.fail("width", "must be given together with height"),
        (None, None) if !video && p.resolution.is_none() => c.fail(
            "width",
            format!(
                "width and height are required unless inputs.video is given, so the output size is known (one of {sizes})"
            ),
        ),
        (None, None) => {}
    }
    if let Some(r) = p.resolution {
        if !spec.allows_resolution(r) {
            c.fail(
                "resolution",
                format!("must be one of {}", spec.resolutions.join(", ")),
            );
        }
        if !video {
            c.fail(
                "resolution",
                "requires inputs.video (the preset keeps the input video's aspect ratio)",
            );
        }
    }
}

fn check_inputs(p: &ParamsView<'_>, c: &mut Checker<'_>) {
    let Some(inputs) = p.inputs else { return };
    if let Some(frames) = &inputs.frame_images {
        check_frame_images(frames, inputs.video.is_some(), c);
    }
    if let Some(video) = &inputs.video {
        check_video_ref("inputs.video", video, c);
    }
    if let Some(refs) = &inputs.reference_videos {
        if refs.len() != 1 {
            c.fail("inputs.referenceVideos", "must have exactly 1 item");
        }
        for (i, v) in refs.iter().enumerate() {
            check_video_ref(&format!("inputs.referenceVideos[{i}]"), v, c);
        }
    }
    if let Some(elements) = &inputs.elements {
        if elements.is_empty() || elements.len() > MAX_ELEMENTS {
            c.fail(
                "inputs.elements",
                format!("must have 1 to {MAX_ELEMENTS} items"),
            );
        }
        for (i, e) in elements.iter().enumerate() {
            check_element(&format!("inputs.elements[{i}]"), e, c);
        }
    }
}

fn check_frame_images(frames: &[FrameImage], with_video: bool, c: &mut Checker<'_>) {
    const PATH: &str = "inputs.frameImages";
    if with_video {
        c.fail(PATH, "must not be combined with inputs.video");
    }
    if frames.is_empty() || frames.len() > MAX_FRAME_IMAGES {
        c.fail(PATH, format!("must have 1 to {MAX_FRAME_IMAGES} items"));
    }
    // Index of the item already holding the first / last frame.
    let mut taken: [Option<usize>; 2] = [None, None];
    for (i, item) in frames.iter().enumerate() {
        let image_path = match item {
            FrameImage::Plain(_) => format!("{PATH}[{i}]"),
            FrameImage::Positioned(_) => format!("{PATH}[{i}].image"),
        };
        check_image(&image_path, item.image(), c);
        let is_first = match item.frame() {
            Some(f) => f.is_first(),
            None if i < MAX_FRAME_IMAGES => i == 0,
            None => continue, // already reported as too many items
        };
        let slot = &mut taken[usize::from(!is_first)];
        match slot {
            Some(j) => {
                let path = match item.frame() {
                    Some(_) => format!("{PATH}[{i}].frame"),
                    None => format!("{PATH}[{i}]"),
                };
                let which = if is_first { "first" } else { "last" };
                c.fail(
                    path,
                    format!(
                        "targets the {which} frame, already taken by {PATH}[{j}] (\"first\" is 0, \"last\" is -1; items without frame are first, then last)"
                    ),
                );
            }
            None => *slot = Some(i),
        }
    }
}

fn check_element(base: &str, e: &Element, c: &mut Checker<'_>) {
    if e.id.trim().is_empty() {
        c.fail(format!("{base}.id"), "must not be empty");
    }
    if let Some(img) = &e.frontal_image {
        check_image(&format!("{base}.frontalImage"), img, c);
    }
    if let Some(images) = &e.images {
        if images.is_empty() || images.len() > MAX_ELEMENT_IMAGES {
            c.fail(
                format!("{base}.images"),
                format!("must have 1 to {MAX_ELEMENT_IMAGES} items"),
            );
        }
        if e.frontal_image.is_none() {
            c.fail(format!("{base}.images"), "requires frontalImage");
        }
        for (j, img) in images.iter().enumerate() {
            check_image(&format!("{base}.images[{j}]"), img, c);
        }
    }
    if let Some(videos) = &e.videos {
        if videos.len() != 1 {
            c.fail(format!("{base}.videos"), "must have exactly 1 item");
        }
        if e.images.is_some() || e.voices.is_some() || e.frontal_image.is_some() {
            c.fail(
                format!("{base}.videos"),
                "cannot be combined with frontalImage, images or voices",
            );
        }
        for (j, v) in videos.iter().enumerate() {
            check_video_ref(&format!("{base}.videos[{j}]"), v, c);
        }
    }
    if let Some(voices) = &e.voices {
        if voices.len() != 1 {
            c.fail(format!("{base}.voices"), "must have exactly 1 item");
        }
        if e.frontal_image.is_none() && e.images.is_none() {
            c.fail(
                format!("{base}.voices"),
                "requires frontalImage or images: a voice belongs to an image-based element",
            );
        }
        for (j, v) in voices.iter().enumerate() {
            if v.trim().is_empty() {
                c.fail(format!("{base}.voices[{j}]"), "must not be empty");
            }
        }
    }
    if let Some(tags) = &e.tags {
        if tags.is_empty() {
            c.fail(format!("{base}.tags"), "must have at least 1 item");
        }
        for (j, t) in tags.iter().enumerate() {
            if t.trim().is_empty() {
                c.fail(format!("{base}.tags[{j}]"), "must not be empty");
            }
        }
    }
}

fn check_multi_prompt(p: &ParamsView<'_>, element_count: usize, c: &mut Checker<'_>) {
    let Some(segments) = p.multi_prompt() else {
        return;
    };
    if segments.is_empty() || segments.len() > MAX_SEGMENTS {
        c.fail(
            MULTI_PROMPT,
            format!("must have 1 to {MAX_SEGMENTS} segments"),
        );
    }
    for (i, s) in segments.iter().enumerate() {
        check_prompt_text(
            &format!("{MULTI_PROMPT}[{i}].prompt"),
            &s.prompt,
            element_count,
            c,
        );
        if s.duration < 1 {
            c.fail(
                format!("{MULTI_PROMPT}[{i}].duration"),
                "must be at least 1 second",
            );
        }
    }
    // With inputs.video the length is the input's, unknown here.
    if let (Some(total), false) = (p.effective_duration(), segments.is_empty()) {
        let sum: u64 = segments.iter().map(|s| u64::from(s.duration)).sum();
        if sum != u64::from(total) {
            let given = if p.duration.is_some() {
                ""
            } else {
                ", the default"
            };
            c.fail(
                MULTI_PROMPT,
                format!(
                    "segment durations must add up to duration ({total} s{given}), got {sum} s"
                ),
            );
        }
    }
}

fn check_image(path: &str, s: &str, c: &mut Checker<'_>) {
    if s.trim().is_empty() {
        c.fail(path, "must not be empty");
    } else if !is_image_ref(s) {
        c.fail(path, IMAGE_FORMS);
    }
}

fn check_video_ref(path: &str, s: &str, c: &mut Checker<'_>) {
    if s.trim().is_empty() {
        c.fail(path, "must not be empty");
    } else if !(is_uuid(s) || is_http_url(s)) {
        c.fail(path, VIDEO_FORMS);
    }
}

fn is_uuid(s: &str) -> bool {
    Uuid::try_parse(s).is_ok()
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

/// UUID, http(s) URL, `data:image/<type>;base64,<data>` or raw base64.
pub fn is_image_ref(s: &str) -> bool {
    is_uuid(s) || is_http_url(s) || is_image_data_uri(s) || looks_like_base64(s, 16)
}

fn is_image_data_uri(s: &str) -> bool {
    const SCHEME: &str = "data:image/";
    let Some(head) = s.get(..SCHEME.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(SCHEME) {
        return false;
    }
    let Some((subtype, payload)) = s[SCHEME.len()..].split_once(";base64,") else {
        return false;
    };
    !subtype.is_empty()
        && subtype
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
        && looks_like_base64(payload, 4)
}

/// Standard base64 alphabet, padded to a multiple of 4, at least `min_len` long.
fn looks_like_base64(s: &str, min_len: usize) -> bool {
    let body = s.trim_end_matches('=');
    s.len() >= min_len
        && s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

// ---------------------------------------------------------------------------
// Decoding errors
// ---------------------------------------------------------------------------

fn parse_at<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, Vec<FieldError>> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let rel = if path == "." { String::new() } else { path };
        let (rel, rule) = describe(rel, &e.inner().to_string());
        vec![FieldError {
            path: join(prefix, &rel),
            rule,
        }]
    })
}

/// Turns serde's message into a rule sentence; fixes the path of a missing
/// field (serde reports it on the parent object).
fn describe(rel: String, msg: &str) -> (String, String) {
    if let Some(field) = between(msg, "missing field `", "`") {
        return (join(&rel, field), "is required".to_string());
    }
    if let Some(field) = between(msg, "unknown field `", "`") {
        let at_root = rel == field;
        if at_root && RESERVED.contains(&field) {
            return (rel, "is set by reelay and must not be given".to_string());
        }
        let rule = match msg.split_once(", expected ") {
            Some((_, expected)) => {
                format!("is not a known field (expected {})", strip_ticks(expected))
            }
            None => "is not a known field".to_string(),
        };
        return (rel, rule);
    }
    if let Some(variant) = between(msg, "unknown variant `", "`") {
        let expected = msg.split_once(", expected ").map_or("", |(_, e)| e);
        return (
            rel,
            format!("must be {} (got \"{variant}\")", strip_ticks(expected)),
        );
    }
    for head in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(head) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                return (
                    rel,
                    format!("must be {} (got {got})", plain_expected(expected)),
                );
            }
        }
    }
    (rel, msg.to_string())
}

fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" => "a non-negative whole number".to_string(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "an object".to_string(),
        e if e.starts_with("struct ") => "an object".to_string(),
        e => e.to_string(),
    }
}

fn between<'m>(msg: &'m str, open: &str, close: &str) -> Option<&'m str> {
    let rest = &msg[msg.find(open)? + open.len()..];
    Some(&rest[..rest.find(close)?])
}

fn strip_ticks(s: &str) -> String {
    s.replace('`', "")
}

#[cfg(test)]
mod tests;
