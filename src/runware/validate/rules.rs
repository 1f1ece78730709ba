//! The rules of the model page, one function per concern, over the view a
//! generation request and a task share.

use super::refs::{is_http_url, is_image_ref, is_uuid};
use super::Checker;
use crate::runware::models::ModelSpec;
use crate::runware::types::{Element, FrameImage, ParamsView, DELIVERY_ASYNC, OUTPUT_TYPE_URL};

pub(super) const PROMPT_MIN_CHARS: usize = 2;
pub(super) const PROMPT_MAX_CHARS: usize = 2500;
pub(super) const NUMBER_RESULTS: (u32, u32) = (1, 4);
pub(super) const OUTPUT_QUALITY: (u32, u32) = (20, 99);
pub(super) const TTL_MIN: u32 = 60;
pub(super) const MAX_FRAME_IMAGES: usize = 2;
pub(super) const MAX_ELEMENTS: usize = 3;
pub(super) const MAX_ELEMENT_IMAGES: usize = 3;
pub(super) const MAX_SEGMENTS: usize = 6;
pub(super) const MULTI_PROMPT: &str = "providerSettings.klingai.multiPrompt";
pub(super) const IMAGE_FORMS: &str =
    "must be an image UUID, an http(s) URL, a data:image/...;base64, URI or base64 data";
pub(super) const VIDEO_FORMS: &str = "must be a UUID or an http(s) URL";
/// Task fields reelay fills in itself; a user who pastes them gets a clear rule.
pub(super) const RESERVED: [&str; 5] = [
    "taskType",
    "taskUUID",
    "uploadEndpoint",
    "webhookURL",
    "includeCost",
];

pub(super) fn check_params(p: &ParamsView<'_>, spec: &ModelSpec, c: &mut Checker<'_>) {
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

pub(super) fn check_prompts(p: &ParamsView<'_>, element_count: usize, c: &mut Checker<'_>) {
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

pub(super) fn check_prompt_text(path: &str, text: &str, element_count: usize, c: &mut Checker<'_>) {
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
pub(super) fn element_refs(text: &str) -> Vec<String> {
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

pub(super) fn check_scalars(p: &ParamsView<'_>, spec: &ModelSpec, c: &mut Checker<'_>) {
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

pub(super) fn range(c: &mut Checker<'_>, path: &str, value: Option<u32>, (lo, hi): (u32, u32)) {
    if matches!(value, Some(v) if !(lo..=hi).contains(&v)) {
        c.fail(path, format!("must be from {lo} to {hi}"));
    }
}

pub(super) fn check_size(p: &ParamsView<'_>, spec: &ModelSpec, c: &mut Checker<'_>) {
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

pub(super) fn check_inputs(p: &ParamsView<'_>, c: &mut Checker<'_>) {
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

pub(super) fn check_frame_images(frames: &[FrameImage], with_video: bool, c: &mut Checker<'_>) {
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

pub(super) fn check_element(base: &str, e: &Element, c: &mut Checker<'_>) {
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

pub(super) fn check_multi_prompt(p: &ParamsView<'_>, element_count: usize, c: &mut Checker<'_>) {
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

pub(super) fn check_image(path: &str, s: &str, c: &mut Checker<'_>) {
    if s.trim().is_empty() {
        c.fail(path, "must not be empty");
    } else if !is_image_ref(s) {
        c.fail(path, IMAGE_FORMS);
    }
}

pub(super) fn check_video_ref(path: &str, s: &str, c: &mut Checker<'_>) {
    if s.trim().is_empty() {
        c.fail(path, "must not be empty");
    } else if !(is_uuid(s) || is_http_url(s)) {
        c.fail(path, VIDEO_FORMS);
    }
}
