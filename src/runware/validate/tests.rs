//! Table tests: every rule, valid and invalid side, asserting exact paths.

use super::*;
use crate::runware::models::ModelSpec;
use serde_json::{json, Value};

const UUID_A: &str = "6f1c9a52-3b7e-4d0a-9c51-2f8e7d6b4a10";
const IMG: &str = "https://img.example.com/a.png";
const IMG2: &str = "https://img.example.com/b.png";
const VID: &str = "https://video.example.com/in.mp4";
const B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ";

/// A valid text-to-video request; cases patch it.
fn base() -> Value {
    json!({"positivePrompt": "A calm sea at dawn", "width": 3840, "height": 2160})
}

/// Deep merge; `null` in the patch removes the key.
fn merge(target: &mut Value, patch: &Value) {
    merge_with(target, patch, true);
}

/// Deep merge that keeps `null`s, for combining patches before they are applied.
fn merge_with(target: &mut Value, patch: &Value, drop_nulls: bool) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() && drop_nulls {
                    t.remove(k);
                } else {
                    merge_with(t.entry(k.clone()).or_insert(Value::Null), v, drop_nulls);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn patched(patch: Value) -> Value {
    let mut v = base();
    merge(&mut v, &patch);
    v
}

/// Parse then validate, as the API does.
fn errors_for(value: &Value) -> Vec<FieldError> {
    parse_and_validate_generation(value, &ModelSpec::kling_o3_4k(), "generation")
        .err()
        .unwrap_or_default()
}

fn no_video_size() -> Value {
    json!({"width": null, "height": null})
}

fn with(a: Value, b: Value) -> Value {
    let mut v = a;
    merge_with(&mut v, &b, false);
    v
}

fn segs(durations: &[u32]) -> Value {
    Value::Array(
        durations
            .iter()
            .enumerate()
            .map(|(i, d)| json!({"prompt": format!("shot {i}"), "duration": d}))
            .collect(),
    )
}

fn multi(durations: &[u32]) -> Value {
    json!({"positivePrompt": null, "providerSettings": {"klingai": {"multiPrompt": segs(durations)}}})
}

fn element(v: Value) -> Value {
    json!({"inputs": {"elements": [v]}})
}

fn frames(v: Value) -> Value {
    json!({"inputs": {"frameImages": v}})
}

fn video_edit(extra: Value) -> Value {
    with(
        with(no_video_size(), json!({"inputs": {"video": VID}})),
        extra,
    )
}

#[test]
fn generation_rules_table() {
    let g = "generation";
    let p = |rel: &str| format!("{g}.{rel}");
    let mp = |rel: &str| format!("{g}.providerSettings.klingai.multiPrompt{rel}");
    let el = |rel: &str| format!("{g}.inputs.elements[0].{rel}");
    let long = "é".repeat(2500);
    let too_long = "a".repeat(2501);

    #[rustfmt::skip]
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        // --- model
        ("valid: minimal text-to-video", json!({}), vec![]),
        ("valid: model equal to the configured air", json!({"model": "klingai:kling-video@o3-4k"}), vec![]),
        ("invalid: another model", json!({"model": "klingai:kling-video@3-4k"}), vec![p("model")]),
        // --- prompt
        ("valid: prompt of exactly 2 chars", json!({"positivePrompt": "ab"}), vec![]),
        ("valid: 2500 multibyte chars (counted as chars, not bytes)", json!({"positivePrompt": long}), vec![]),
        ("invalid: prompt of 1 char", json!({"positivePrompt": "a"}), vec![p("positivePrompt")]),
        ("invalid: prompt of 2501 chars", json!({"positivePrompt": too_long}), vec![p("positivePrompt")]),
        ("invalid: blank prompt", json!({"positivePrompt": "   "}), vec![p("positivePrompt")]),
        ("invalid: no prompt and no multiPrompt", json!({"positivePrompt": null}), vec![p("positivePrompt")]),
        ("invalid: prompt and multiPrompt together",
            json!({"providerSettings": {"klingai": {"multiPrompt": segs(&[5])}}}), vec![p("positivePrompt")]),
        ("invalid: prompt is a number", json!({"positivePrompt": 5}), vec![p("positivePrompt")]),
        // --- duration
        ("valid: duration 3", json!({"duration": 3}), vec![]),
        ("valid: duration 15", json!({"duration": 15}), vec![]),
        ("invalid: duration 2", json!({"duration": 2}), vec![p("duration")]),
        ("invalid: duration 16", json!({"duration": 16}), vec![p("duration")]),
        ("invalid: duration 5.5", json!({"duration": 5.5}), vec![p("duration")]),
        ("invalid: duration -1", json!({"duration": -1}), vec![p("duration")]),
        ("invalid: duration as string", json!({"duration": "5"}), vec![p("duration")]),
        ("invalid: duration with inputs.video", video_edit(json!({"duration": 5})), vec![p("duration")]),
        // --- scalar limits
        ("valid: numberResults 1", json!({"numberResults": 1}), vec![]),
        ("valid: numberResults 4", json!({"numberResults": 4}), vec![]),
        ("invalid: numberResults 0", json!({"numberResults": 0}), vec![p("numberResults")]),
        ("invalid: numberResults 5", json!({"numberResults": 5}), vec![p("numberResults")]),
        ("valid: outputQuality 20", json!({"outputQuality": 20}), vec![]),
        ("valid: outputQuality 99", json!({"outputQuality": 99}), vec![]),
        ("invalid: outputQuality 19", json!({"outputQuality": 19}), vec![p("outputQuality")]),
        ("invalid: outputQuality 100", json!({"outputQuality": 100}), vec![p("outputQuality")]),
        ("valid: ttl 60", json!({"ttl": 60}), vec![]),
        ("invalid: ttl 59", json!({"ttl": 59}), vec![p("ttl")]),
        ("valid: outputFormat MP4", json!({"outputFormat": "MP4"}), vec![]),
        ("valid: outputFormat WEBM", json!({"outputFormat": "WEBM"}), vec![]),
        ("valid: outputFormat MOV", json!({"outputFormat": "MOV"}), vec![]),
        ("invalid: outputFormat lower case", json!({"outputFormat": "mp4"}), vec![p("outputFormat")]),
        ("invalid: outputFormat GIF", json!({"outputFormat": "GIF"}), vec![p("outputFormat")]),
        ("valid: outputType URL", json!({"outputType": "URL"}), vec![]),
        ("invalid: outputType base64Data", json!({"outputType": "base64Data"}), vec![p("outputType")]),
        ("valid: deliveryMethod async", json!({"deliveryMethod": "async"}), vec![]),
        ("invalid: deliveryMethod sync", json!({"deliveryMethod": "sync"}), vec![p("deliveryMethod")]),
        ("valid: safety none", json!({"safety": {"checkContent": false, "mode": "none"}}), vec![]),
        ("valid: safety fast", json!({"safety": {"mode": "fast"}}), vec![]),
        ("valid: safety full", json!({"safety": {"checkContent": true, "mode": "full"}}), vec![]),
        ("invalid: safety mode medium", json!({"safety": {"mode": "medium"}}), vec![p("safety.mode")]),
        ("invalid: safety checkContent not a bool", json!({"safety": {"checkContent": "yes"}}), vec![p("safety.checkContent")]),
        ("valid: sound and keepOriginalSound", json!({"providerSettings": {"klingai": {"sound": true, "keepOriginalSound": true}}}), vec![]),
        // --- size
        ("valid: 9:16", json!({"width": 2160, "height": 3840}), vec![]),
        ("valid: 1:1", json!({"width": 2880, "height": 2880}), vec![]),
        ("invalid: size the model does not offer", json!({"width": 1920, "height": 1080}), vec![p("width")]),
        ("invalid: width without height", json!({"height": null}), vec![p("height")]),
        ("invalid: height without width", json!({"width": null}), vec![p("width")]),
        ("invalid: no size and no input video", no_video_size(), vec![p("width")]),
        ("invalid: frame images alone do not size the output",
            with(no_video_size(), frames(json!([IMG]))), vec![p("width")]),
        ("valid: width/height beside frame images", frames(json!([IMG])), vec![]),
        ("invalid: width/height with inputs.video", json!({"inputs": {"video": VID}}), vec![p("width")]),
        ("valid: video edit sized by the input", video_edit(json!({})), vec![]),
        ("valid: video edit with resolution 4k", video_edit(json!({"resolution": "4k"})), vec![]),
        ("invalid: resolution 1080p", video_edit(json!({"resolution": "1080p"})), vec![p("resolution")]),
        ("invalid: resolution without inputs.video", json!({"resolution": "4k"}), vec![p("resolution")]),
        ("invalid: resolution alone (no size either)",
            with(no_video_size(), json!({"resolution": "4k"})), vec![p("resolution")]),
        // --- frameImages
        ("valid: one URL frame", frames(json!([IMG])), vec![]),
        ("valid: two plain strings are first and last", frames(json!([IMG, IMG2])), vec![]),
        ("valid: objects first and last", frames(json!([{"image": IMG, "frame": "first"}, {"image": IMG2, "frame": "last"}])), vec![]),
        ("valid: objects 0 and -1", frames(json!([{"image": IMG, "frame": -1}, {"image": IMG2, "frame": 0}])), vec![]),
        ("valid: a single last frame", frames(json!([{"image": IMG, "frame": "last"}])), vec![]),
        ("valid: object without frame then last", frames(json!([{"image": IMG}, {"image": IMG2, "frame": -1}])), vec![]),
        ("valid: UUID image", frames(json!([UUID_A])), vec![]),
        ("valid: data URI image", frames(json!([format!("data:image/png;base64,{B64}")])), vec![]),
        ("valid: raw base64 image", frames(json!([B64])), vec![]),
        ("invalid: no frame images", frames(json!([])), vec![p("inputs.frameImages")]),
        ("invalid: three frame images", frames(json!([IMG, IMG2, IMG])), vec![p("inputs.frameImages")]),
        ("invalid: empty image string", frames(json!([""])), vec![p("inputs.frameImages[0]")]),
        ("invalid: image string of no known form", frames(json!(["not an image"])), vec![p("inputs.frameImages[0]")]),
        ("invalid: ftp image URL", frames(json!(["ftp://img.example.com/a.png"])), vec![p("inputs.frameImages[0]")]),
        ("invalid: data URI that is not an image", frames(json!([format!("data:text/plain;base64,{B64}")])), vec![p("inputs.frameImages[0]")]),
        ("invalid: object with empty image", frames(json!([{"image": "", "frame": "first"}])), vec![p("inputs.frameImages[0].image")]),
        ("invalid: object without image", frames(json!([{"frame": "first"}])), vec![p("inputs.frameImages[0].image")]),
        ("invalid: frame middle", frames(json!([{"image": IMG, "frame": "middle"}])), vec![p("inputs.frameImages[0].frame")]),
        ("invalid: frame 1", frames(json!([IMG, {"image": IMG2, "frame": 1}])), vec![p("inputs.frameImages[1].frame")]),
        ("invalid: unknown key in frame object", frames(json!([{"image": IMG, "position": 0}])), vec![p("inputs.frameImages[0].position")]),
        ("invalid: frame image is a number", frames(json!([7])), vec![p("inputs.frameImages[0]")]),
        ("invalid: first and 0 are the same frame", frames(json!([{"image": IMG, "frame": "first"}, {"image": IMG2, "frame": 0}])), vec![p("inputs.frameImages[1].frame")]),
        ("invalid: last and -1 are the same frame", frames(json!([{"image": IMG, "frame": "last"}, {"image": IMG2, "frame": -1}])), vec![p("inputs.frameImages[1].frame")]),
        ("invalid: plain first then explicit first", frames(json!([IMG, {"image": IMG2, "frame": "first"}])), vec![p("inputs.frameImages[1].frame")]),
        ("invalid: explicit last then implied last", frames(json!([{"image": IMG, "frame": "last"}, IMG2])), vec![p("inputs.frameImages[1]")]),
        ("invalid: frame images with inputs.video", video_edit(frames(json!([IMG]))), vec![p("inputs.frameImages")]),
        // --- video and reference videos
        ("valid: video by UUID", video_edit(json!({"inputs": {"video": UUID_A}})), vec![]),
        ("invalid: empty video", video_edit(json!({"inputs": {"video": ""}})), vec![p("inputs.video")]),
        ("invalid: video of no known form", video_edit(json!({"inputs": {"video": "clip.mp4"}})), vec![p("inputs.video")]),
        ("valid: one reference video", json!({"inputs": {"referenceVideos": [VID]}}), vec![]),
        ("invalid: no reference videos", json!({"inputs": {"referenceVideos": []}}), vec![p("inputs.referenceVideos")]),
        ("invalid: two reference videos", json!({"inputs": {"referenceVideos": [VID, UUID_A]}}), vec![p("inputs.referenceVideos")]),
        ("invalid: reference video of no known form", json!({"inputs": {"referenceVideos": ["x"]}}), vec![p("inputs.referenceVideos[0]")]),
        // --- elements
        ("valid: element referenced by id only", element(json!({"id": "hero"})), vec![]),
        ("valid: image element with voice and tags",
            element(json!({"id": "hero", "description": "our hero", "frontalImage": IMG, "images": [IMG2, B64, UUID_A], "voices": [VID], "tags": ["person"]})), vec![]),
        ("valid: voice beside a frontal image only", element(json!({"id": "hero", "frontalImage": IMG, "voices": [VID]})), vec![]),
        ("valid: video element", element(json!({"id": "car", "videos": [VID]})), vec![]),
        ("valid: three elements", json!({"inputs": {"elements": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}}), vec![]),
        ("invalid: no elements", json!({"inputs": {"elements": []}}), vec![p("inputs.elements")]),
        ("invalid: four elements", json!({"inputs": {"elements": [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}]}}), vec![p("inputs.elements")]),
        ("invalid: empty id", element(json!({"id": " "})), vec![el("id")]),
        ("invalid: missing id", element(json!({"frontalImage": IMG})), vec![el("id")]),
        ("invalid: unknown element key", element(json!({"id": "a", "image": IMG})), vec![el("image")]),
        ("invalid: bad frontal image", element(json!({"id": "a", "frontalImage": "nope"})), vec![el("frontalImage")]),
        ("invalid: images without frontalImage", element(json!({"id": "a", "images": [IMG]})), vec![el("images")]),
        ("invalid: no images", element(json!({"id": "a", "frontalImage": IMG, "images": []})), vec![el("images")]),
        ("invalid: four images", element(json!({"id": "a", "frontalImage": IMG, "images": [IMG, IMG, IMG, IMG]})), vec![el("images")]),
        ("invalid: bad element image", element(json!({"id": "a", "frontalImage": IMG, "images": [IMG, "??"]})), vec![el("images[1]")]),
        ("invalid: two videos", element(json!({"id": "a", "videos": [VID, VID]})), vec![el("videos")]),
        ("invalid: no videos", element(json!({"id": "a", "videos": []})), vec![el("videos")]),
        ("invalid: video beside images", element(json!({"id": "a", "frontalImage": IMG, "images": [IMG], "videos": [VID]})), vec![el("videos")]),
        ("invalid: video beside frontalImage", element(json!({"id": "a", "frontalImage": IMG, "videos": [VID]})), vec![el("videos")]),
        ("invalid: video beside voices", element(json!({"id": "a", "videos": [VID], "voices": [VID]})), vec![el("videos"), el("voices")]),
        ("invalid: bad element video", element(json!({"id": "a", "videos": ["v"]})), vec![el("videos[0]")]),
        ("invalid: two voices", element(json!({"id": "a", "frontalImage": IMG, "voices": [VID, VID]})), vec![el("voices")]),
        ("invalid: voice without images", element(json!({"id": "a", "voices": [VID]})), vec![el("voices")]),
        ("invalid: empty voice", element(json!({"id": "a", "frontalImage": IMG, "voices": [""]})), vec![el("voices[0]")]),
        ("invalid: no tags", element(json!({"id": "a", "tags": []})), vec![el("tags")]),
        ("invalid: empty tag", element(json!({"id": "a", "tags": [""]})), vec![el("tags[0]")]),
        // --- element references in prompts
        ("valid: prompt references element 1", with(element(json!({"id": "a"})), json!({"positivePrompt": "<<<element_1>>> waves"})), vec![]),
        ("valid: reference the third of three",
            json!({"positivePrompt": "<<<element_3>>> runs", "inputs": {"elements": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}}), vec![]),
        ("invalid: reference beyond the elements", with(element(json!({"id": "a"})), json!({"positivePrompt": "<<<element_2>>> waves"})), vec![p("positivePrompt")]),
        ("invalid: element_0", with(element(json!({"id": "a"})), json!({"positivePrompt": "<<<element_0>>> waves"})), vec![p("positivePrompt")]),
        ("invalid: reference without elements", json!({"positivePrompt": "<<<element_1>>> waves"}), vec![p("positivePrompt")]),
        ("invalid: multiPrompt segment references a missing element",
            with(multi(&[2, 3]), json!({"providerSettings": {"klingai": {"multiPrompt": [{"prompt": "ok", "duration": 2}, {"prompt": "<<<element_1>>> jumps", "duration": 3}]}}})),
            vec![mp("[1].prompt")]),
        // --- multiPrompt
        ("valid: segments add up to the default 5 s", multi(&[2, 3]), vec![]),
        ("valid: segments add up to duration 10", with(multi(&[4, 3, 3]), json!({"duration": 10})), vec![]),
        ("valid: six segments", with(multi(&[1, 1, 1, 1, 1, 1]), json!({"duration": 6})), vec![]),
        ("invalid: seven segments", with(multi(&[1, 1, 1, 1, 1, 1, 1]), json!({"duration": 7})), vec![mp("")]),
        ("invalid: no segments", multi(&[]), vec![mp("")]),
        ("invalid: sum differs from the default 5 s", multi(&[3, 3]), vec![mp("")]),
        ("invalid: sum differs from duration", with(multi(&[2, 3]), json!({"duration": 6})), vec![mp("")]),
        ("invalid: segment of 0 s", multi(&[0, 5]), vec![mp("[0].duration")]),
        ("invalid: fractional segment", json!({"positivePrompt": null, "providerSettings": {"klingai": {"multiPrompt": [{"prompt": "ab", "duration": 2}, {"prompt": "cd", "duration": 1}, {"prompt": "ef", "duration": 1.5}]}}}), vec![mp("[2].duration")]),
        ("invalid: segment prompt of 1 char", json!({"positivePrompt": null, "providerSettings": {"klingai": {"multiPrompt": [{"prompt": "a", "duration": 5}]}}}), vec![mp("[0].prompt")]),
        ("invalid: segment without duration", json!({"positivePrompt": null, "providerSettings": {"klingai": {"multiPrompt": [{"prompt": "ab"}]}}}), vec![mp("[0].duration")]),
        ("valid: segments with inputs.video are not summed", video_edit(multi(&[2, 2])), vec![]),
        // --- unknown and reserved fields
        ("invalid: typo at the root", json!({"positivPrompt": "x"}), vec![p("positivPrompt")]),
        ("invalid: typo in provider settings", json!({"providerSettings": {"klingai": {"multiprompt": []}}}), vec![p("providerSettings.klingai.multiprompt")]),
        ("invalid: another provider", json!({"providerSettings": {"google": {}}}), vec![p("providerSettings.google")]),
        ("invalid: webhookURL is reelay's", json!({"webhookURL": "https://x"}), vec![p("webhookURL")]),
        ("invalid: uploadEndpoint is reelay's", json!({"uploadEndpoint": "https://x"}), vec![p("uploadEndpoint")]),
        ("invalid: taskUUID is reelay's", json!({"taskUUID": UUID_A}), vec![p("taskUUID")]),
        ("invalid: includeCost is reelay's", json!({"includeCost": true}), vec![p("includeCost")]),
        // --- many at once
        ("invalid: every violation is reported",
            json!({"numberResults": 9, "outputQuality": 5, "ttl": 1, "duration": 1, "width": 100}),
            vec![p("numberResults"), p("outputQuality"), p("ttl"), p("duration"), p("width")]),
    ];

    let mut failures = Vec::new();
    for (name, patch, expected) in &cases {
        let value = patched(patch.clone());
        let got = errors_for(&value);
        let mut got_paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
        got_paths.sort();
        want.sort();
        if got_paths != want {
            failures.push(format!("{name}\n   want {want:?}\n   got  {got:?}"));
        }
        for e in &got {
            assert!(
                !e.rule.trim().is_empty(),
                "{name}: empty rule for {}",
                e.path
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rules_are_sentences_a_user_can_act_on() {
    let rule = |v: Value| {
        let errs = errors_for(&patched(v));
        assert_eq!(errs.len(), 1, "{errs:?}");
        errs[0].rule.clone()
    };
    assert_eq!(
        rule(json!({"width": 1920, "height": 1080})),
        "width x height must be one of 3840x2160, 2160x3840, 2880x2880 (got 1920x1080)"
    );
    assert_eq!(
        rule(json!({"outputFormat": "mp4"})),
        "must be one of MP4, WEBM, MOV (got \"mp4\")"
    );
    assert_eq!(
        rule(json!({"duration": 5.5})),
        "must be a non-negative whole number (got floating point `5.5`)"
    );
    assert_eq!(
        rule(json!({"webhookURL": "https://x"})),
        "is set by reelay and must not be given"
    );
    assert!(rule(json!({"positivPrompt": "x"}))
        .starts_with("is not a known field (expected one of model, positivePrompt"));
    assert_eq!(
        rule(frames(json!([{"image": IMG, "frame": "middle"}]))),
        "must be \"first\", \"last\", 0 or -1 (got string \"middle\")"
    );
    assert_eq!(
        rule(multi(&[3, 3])),
        "segment durations must add up to duration (5 s, the default), got 6 s"
    );
    assert_eq!(
        rule(json!({"positivePrompt": "<<<element_2>>> and <<<element_2>>>"})),
        "references <<<element_2>>> but no inputs.elements are given"
    );
    assert_eq!(rule(frames(json!(["x"]))), IMAGE_FORMS);
    assert!(rule(json!({"positivePrompt": "a"})).contains("got 1"));
}

#[test]
fn a_non_object_generation_is_reported_at_the_prefix() {
    let errs = parse_generation(&json!("make me a video"), "generation").unwrap_err();
    assert_eq!(errs[0].path, "generation");
    assert!(
        errs[0].rule.starts_with("must be an object"),
        "{}",
        errs[0].rule
    );
    let errs = parse_generation(&json!({"duration": "x"}), "").unwrap_err();
    assert_eq!(errs[0].path, "duration");
}

#[test]
fn field_errors_serialize_as_path_and_rule() {
    let e = FieldError {
        path: "generation.ttl".into(),
        rule: "must be at least 60 seconds".into(),
    };
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"path": "generation.ttl", "rule": "must be at least 60 seconds"})
    );
    assert_eq!(e.to_string(), "generation.ttl: must be at least 60 seconds");
}

// ---------------------------------------------------------------------------
// Task side (simulator)
// ---------------------------------------------------------------------------

fn base_task() -> Value {
    let req = parse_generation(&base(), "").unwrap();
    let task = req.to_task(
        uuid::Uuid::parse_str(UUID_A).unwrap(),
        crate::runware::KLING_O3_4K,
        Some("https://bucket.example.com/masters/a.mp4?X-Amz-Signature=abc"),
        Some("https://reelay.example.com/hooks/runware?token=t"),
    );
    serde_json::to_value(task).unwrap()
}

fn task_errors(value: &Value) -> Vec<FieldError> {
    parse_and_validate_task(value, &ModelSpec::kling_o3_4k())
        .err()
        .unwrap_or_default()
}

#[test]
fn task_rules_table() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("valid: what to_task builds", json!({}), vec![]),
        ("valid: numberResults 4 (the task allows variations)", json!({"numberResults": 4}), vec![]),
        ("valid: no webhook and no upload endpoint", json!({"webhookURL": null, "uploadEndpoint": null}), vec![]),
        ("invalid: another task type", json!({"taskType": "imageInference"}), vec!["taskType"]),
        ("invalid: nil taskUUID", json!({"taskUUID": "00000000-0000-0000-0000-000000000000"}), vec!["taskUUID"]),
        ("invalid: taskUUID not a UUID", json!({"taskUUID": "abc"}), vec!["taskUUID"]),
        ("invalid: missing taskUUID", json!({"taskUUID": null}), vec!["taskUUID"]),
        ("invalid: missing model", json!({"model": null}), vec!["model"]),
        ("invalid: another model", json!({"model": "runware:100@1"}), vec!["model"]),
        ("invalid: sync delivery", json!({"deliveryMethod": "sync"}), vec!["deliveryMethod"]),
        ("invalid: upload endpoint not a URL", json!({"uploadEndpoint": "bucket/key"}), vec!["uploadEndpoint"]),
        ("invalid: upload endpoint not http(s)", json!({"uploadEndpoint": "s3://bucket/key"}), vec!["uploadEndpoint"]),
        ("invalid: webhook not http(s)", json!({"webhookURL": "ftp://x/y"}), vec!["webhookURL"]),
        ("invalid: shared rule, unprefixed path", json!({"duration": 20}), vec!["duration"]),
        ("invalid: shared nested rule", json!({"providerSettings": {"klingai": {"multiPrompt": segs(&[1])}}}),
            vec!["positivePrompt", "providerSettings.klingai.multiPrompt"]),
        ("invalid: unknown task field", json!({"seed": 42}), vec!["seed"]),
        ("invalid: includeCost not a bool", json!({"includeCost": "yes"}), vec!["includeCost"]),
    ];
    let mut failures = Vec::new();
    for (name, patch, expected) in &cases {
        let mut value = base_task();
        merge(&mut value, patch);
        let got = task_errors(&value);
        let mut got_paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        let mut want = expected.clone();
        got_paths.sort();
        want.sort();
        if got_paths != want {
            failures.push(format!("{name}\n   want {want:?}\n   got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn image_forms() {
    for ok in [
        IMG,
        UUID_A,
        B64,
        "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ==",
        "DATA:image/webp;base64,UklGRg==",
    ] {
        assert!(is_image_ref(ok), "{ok}");
    }
    for bad in [
        "",
        "hello",
        "abc=def=",
        "data:image/png,rawbytes",
        "data:image/;base64,AAAA",
        "file:///etc/passwd",
        "https://",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcS", // not a multiple of 4
    ] {
        assert!(!is_image_ref(bad), "{bad}");
    }
}

#[test]
fn type_errors_are_listed_all_at_once_with_the_paths_as_sent() {
    let v = patched(json!({
        "duration": "5",
        "width": "wide",
        "outputFormat": "AVI",
        "colour": "red",
        "providerSettings": {"klingai": {
            "sound": "yes",
            "multiPrompt": [
                {"prompt": "first shot", "duration": "x"},
                {"prompt": "second shot", "duration": 2},
                {"prompt": 7, "duration": 3},
                {"duration": 4},
            ],
        }},
    }));
    let errs = parse_generation(&v, "generation").unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    let mp = "generation.providerSettings.klingai.multiPrompt";
    for want in [
        "generation.duration".to_string(),
        "generation.width".to_string(),
        "generation.outputFormat".to_string(),
        "generation.colour".to_string(),
        "generation.providerSettings.klingai.sound".to_string(),
        format!("{mp}[0].duration"),
        format!("{mp}[2].prompt"),
        format!("{mp}[3].prompt"),
    ] {
        assert!(
            paths.contains(&want.as_str()),
            "{want} missing from {paths:?}"
        );
    }
    assert_eq!(paths.len(), 8, "nothing twice, nothing invented: {paths:?}");
    // The fields taken out to go on are not reported as missing.
    assert!(!paths.iter().any(|p| *p == format!("{mp}[0]")), "{paths:?}");
    let rule = |p: &str| errs.iter().find(|e| e.path == p).unwrap().rule.clone();
    assert!(rule("generation.width").starts_with("must be"), "{errs:?}");
    assert_eq!(rule(&format!("{mp}[3].prompt")), "is required");
}

#[test]
fn control_characters_in_free_text_are_refused_naming_the_field() {
    let v = patched(json!({
        "positivePrompt": "A calm sea\u{1b}[2J at dawn",
        "providerSettings": {"klingai": {"multiPrompt": [
            {"prompt": "ok\nwith a newline\tand a tab", "duration": 5},
            {"prompt": "bell\u{7}", "duration": 5},
        ]}},
    }));
    let errs = parse_generation(&v, "generation").unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "generation.positivePrompt",
            "generation.providerSettings.klingai.multiPrompt[1].prompt"
        ],
        "{errs:?}"
    );
    assert!(errs[0].rule.contains("U+001B"), "{}", errs[0].rule);
    assert!(errs[0].rule.contains("other than newline and tab"));
    // DEL, C1 controls and a carriage return count too; newline and tab do not.
    for bad in ["a\u{7f}b", "a\u{85}b", "line\r\nbreak"] {
        let errs = parse_generation(&patched(json!({"positivePrompt": bad})), "").unwrap_err();
        assert_eq!(errs[0].path, "positivePrompt", "{bad:?}");
    }
    parse_generation(&patched(json!({"positivePrompt": "two\nlines\tok"})), "").unwrap();
    // The simulator refuses them the same way.
    let mut task = base_task();
    task["positivePrompt"] = json!("null\u{0}byte");
    let errs = parse_task(&task).unwrap_err();
    assert_eq!(errs[0].path, "positivePrompt");
}
