use super::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn full_task_json() -> Value {
    json!({
        "taskType": "videoInference",
        "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
        "model": "klingai:kling-video@o3-4k",
        "positivePrompt": "Slow aerial drone shot",
        "width": 3840, "height": 2160, "resolution": "4k", "duration": 5,
        "numberResults": 1, "outputType": "URL", "outputFormat": "MOV",
        "outputQuality": 95,
        "webhookURL": "https://hooks.example.com/runware?token=abc",
        "deliveryMethod": "async",
        "uploadEndpoint": "https://bucket.s3.amazonaws.com/out.mp4?X-Amz-Signature=x",
        "safety": {"checkContent": true, "mode": "fast"},
        "ttl": 3600, "includeCost": true,
        "inputs": {
            "frameImages": [
                "https://img.example.com/a.png",
                {"image": "https://img.example.com/b.png", "frame": "last"},
                {"image": "https://img.example.com/c.png", "frame": 0},
                {"image": "https://img.example.com/d.png", "frame": -1},
                {"image": "https://img.example.com/e.png"}
            ],
            "video": "https://v.example.com/in.mp4",
            "referenceVideos": ["https://v.example.com/ref.mp4"],
            "elements": [{
                "id": "hero", "description": "the hero",
                "frontalImage": "https://img.example.com/f.png",
                "images": ["https://img.example.com/g.png"],
                "voices": ["https://a.example.com/v.mp3"],
                "tags": ["person"]
            }, {"id": "car", "videos": ["https://v.example.com/car.mp4"]}]
        },
        "providerSettings": {"klingai": {
            "sound": true, "keepOriginalSound": false,
            "multiPrompt": [{"prompt": "shot one", "duration": 2},
                            {"prompt": "shot two", "duration": 3}]
        }}
    })
}

#[test]
fn every_task_field_round_trips_with_its_exact_wire_name() {
    let v = full_task_json();
    let task: VideoInferenceTask = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&task).unwrap(), v);
    assert_eq!(task.effective_output_format().extension(), "mov");
    assert_eq!(task.effective_output_format().mime(), "video/quicktime");
    let frames: Vec<_> = task
        .inputs
        .as_ref()
        .unwrap()
        .frame_images
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.frame())
        .collect();
    assert_eq!(
        frames,
        vec![
            None,
            Some(FramePosition::Last),
            Some(FramePosition::Index0),
            Some(FramePosition::IndexMinus1),
            None
        ]
    );
}

#[test]
fn absent_options_are_left_out_of_the_wire_form() {
    let task = GenerationRequest {
        positive_prompt: Some("a cat".into()),
        ..Default::default()
    }
    .to_task(Uuid::nil(), "m", None, None);
    let v = serde_json::to_value(&task).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    let mut expected = vec![
        "deliveryMethod",
        "includeCost",
        "model",
        "numberResults",
        "outputType",
        "positivePrompt",
        "taskType",
        "taskUUID",
    ];
    expected.sort();
    assert_eq!(keys, expected);
}

#[test]
fn to_task_forces_one_result_async_url_and_cost_and_keeps_user_fields() {
    let req: GenerationRequest = serde_json::from_value(json!({
        "positivePrompt": "a cat", "width": 2880, "height": 2880, "duration": 7,
        "numberResults": 3, "outputFormat": "WEBM", "outputQuality": 80, "ttl": 600,
        "safety": {"mode": "full"},
        "providerSettings": {"klingai": {"sound": true}}
    }))
    .unwrap();
    let id = Uuid::new_v4();
    let t = req.to_task(id, "air", Some("https://up"), Some("https://hook"));
    assert_eq!(t.task_type, "videoInference");
    assert_eq!(t.task_uuid, id);
    assert_eq!(t.model, "air");
    assert_eq!(t.number_results, Some(1));
    assert_eq!(t.delivery_method.as_deref(), Some("async"));
    assert_eq!(t.output_type.as_deref(), Some("URL"));
    assert_eq!(t.include_cost, Some(true));
    assert_eq!(t.upload_endpoint.as_deref(), Some("https://up"));
    assert_eq!(t.webhook_url.as_deref(), Some("https://hook"));
    assert_eq!(t.dimensions(), Some((2880, 2880)));
    assert_eq!(t.duration, Some(7));
    assert_eq!(t.output_format, Some(OutputFormat::Webm));
    assert_eq!(t.output_quality, Some(80));
    assert_eq!(t.ttl, Some(600));
    assert_eq!(t.safety, req.safety);
    assert!(t.sound());
    assert_eq!(req.effective_number_results(), 3);
}

#[test]
fn accessors_fall_back_to_the_documented_defaults() {
    let req = GenerationRequest::default();
    assert_eq!(req.effective_duration(), Some(5));
    assert_eq!(req.effective_output_quality(), 95);
    assert_eq!(req.effective_number_results(), 1);
    assert_eq!(req.effective_output_format(), OutputFormat::Mp4);
    assert!(!req.sound());
    assert_eq!(req.dimensions(), None);
    let edit = GenerationRequest {
        inputs: Some(Inputs {
            video: Some("https://v/in.mp4".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(edit.effective_duration(), None);
}

#[test]
fn frame_position_accepts_exactly_four_values() {
    for (v, p) in [
        (json!("first"), FramePosition::First),
        (json!("last"), FramePosition::Last),
        (json!(0), FramePosition::Index0),
        (json!(-1), FramePosition::IndexMinus1),
    ] {
        let got: FramePosition = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(got, p);
        assert_eq!(serde_json::to_value(got).unwrap(), v);
    }
    for bad in [
        json!("middle"),
        json!(1),
        json!(-2),
        json!(0.5),
        json!(null),
    ] {
        assert!(
            serde_json::from_value::<FramePosition>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn task_status_keeps_unknown_values_as_still_running() {
    let s: TaskStatus = serde_json::from_value(json!("pending")).unwrap();
    assert_eq!(s, TaskStatus::Other("pending".into()));
    assert!(!s.is_terminal());
    let s: TaskStatus = serde_json::from_value(json!("SUCCESS")).unwrap();
    assert_eq!(s, TaskStatus::Success);
    assert_eq!(
        serde_json::to_value(TaskStatus::Processing).unwrap(),
        json!("processing")
    );
}

#[test]
fn task_item_tolerates_odd_values_and_extra_fields() {
    let item: TaskItem = serde_json::from_value(json!({
        "taskType": "videoInference",
        "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
        "status": "queued", "progress": "42.5", "seed": "not a number",
        "cost": 0.18, "NSFWContent": false, "resultIndex": 1,
        "videoUUID": "b7db282d-2943-4f12-992f-77df3ad3ec71",
        "somethingNew": {"x": 1}
    }))
    .unwrap();
    assert_eq!(item.status, Some(TaskStatus::Other("queued".into())));
    assert_eq!(item.progress, Some(42.5));
    assert_eq!(item.seed, None);
    assert_eq!(item.cost, Some(0.18));
    assert_eq!(item.nsfw_content, Some(false));
    assert_eq!(item.result_index, Some(1));
    let item: TaskItem = serde_json::from_value(json!({"progress": 30})).unwrap();
    assert_eq!(item.progress, Some(30.0));
}

#[test]
fn api_error_defaults_code_and_reads_every_documented_field() {
    let e: ApiError = serde_json::from_value(json!({
        "code": "unsupportedDuration",
        "message": "Invalid value for duration parameter.",
        "parameter": "duration", "type": "float",
        "documentation": "https://runware.ai/docs",
        "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
        "taskType": "videoInference",
        "allowedValues": [6], "status": "error",
        "responseContent": {"detail": "x"}, "extra": 1
    }))
    .unwrap();
    assert_eq!(e.code, "unsupportedDuration");
    assert_eq!(e.param_type.as_deref(), Some("float"));
    assert_eq!(e.allowed_values, Some(vec![json!(6)]));
    assert_eq!(e.response_content, Some(json!({"detail": "x"})));
    let back = serde_json::to_value(&e).unwrap();
    assert_eq!(back["type"], "float");
    assert_eq!(back["allowedValues"], json!([6]));
    assert!(back.get("extra").is_none());

    let e: ApiError = serde_json::from_value(json!({"message": "boom"})).unwrap();
    assert_eq!(e.code, "unknown");
    let e: ApiError = serde_json::from_value(json!("plain text")).unwrap();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("unknown", "plain text")
    );
}

#[test]
fn all_errors_merges_every_shape() {
    let a = "11111111-1111-4111-8111-111111111111";
    let b = "22222222-2222-4222-8222-222222222222";
    let env: Envelope = serde_json::from_value(json!({
        "data": [
            {"taskUUID": a, "status": "processing"},
            {"taskUUID": b, "status": "error", "error": {"code": "providerError", "message": "x"}},
            {"taskUUID": a, "status": "error"}
        ],
        "errors": [{"code": "timeoutProvider", "taskUUID": a}],
        "error": [{"code": "legacyList"}],
    }))
    .unwrap();
    let errs = env.all_errors();
    let got: Vec<_> = errs
        .iter()
        .map(|e| (e.code.as_str(), e.task_uuid.map(|u| u.to_string())))
        .collect();
    assert_eq!(
        got,
        vec![
            ("timeoutProvider", Some(a.to_string())),
            ("legacyList", None),
            ("providerError", Some(b.to_string())),
            ("unknown", Some(a.to_string())),
        ]
    );

    let legacy: Envelope = serde_json::from_value(json!({
        "error": {"code": "invalidApiKey", "message": "Invalid API key"},
        "taskUUID": a, "taskType": "authentication"
    }))
    .unwrap();
    let errs = legacy.all_errors();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].task_uuid.unwrap().to_string(), a);
    assert_eq!(errs[0].task_type.as_deref(), Some("authentication"));
}

#[test]
fn envelope_tolerates_null_and_empty_keys_and_omits_empty_lists() {
    let env: Envelope =
        serde_json::from_value(json!({"data": null, "errors": [], "extra": true})).unwrap();
    assert!(env.all_errors().is_empty());
    assert_eq!(serde_json::to_value(&env).unwrap(), json!({}));
    let ack = Envelope::with_data(vec![TaskItem::ack("videoInference", Uuid::nil())]);
    assert_eq!(
        serde_json::to_value(&ack).unwrap(),
        json!({"data": [{"taskType": "videoInference",
                          "taskUUID": "00000000-0000-0000-0000-000000000000"}]})
    );
}
