//! Authentication and request validation at the API's edge.

use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn requests_without_a_valid_api_key_get_401() {
    let app = spawn_app().await;
    let url = format!("{}/v1/assets", app.url);
    let none = app.http.post(&url).json(&request(5)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = app
        .http
        .post(&url)
        .bearer_auth("nope")
        .json(&request(5))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let list = app.http.get(&url).send().await.unwrap();
    assert_eq!(list.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_400_naming_the_body() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(format!("{}/v1/assets", app.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"generation\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(body["error"]["fields"][0]["path"], "$");
    app.stop().await;
}

#[tokio::test]
async fn each_bad_field_gets_400_naming_its_path_and_rule() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "duration below 3",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160, "duration": 2}}),
            "generation.duration",
        ),
        (
            "width without height",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "duration": 5}}),
            "generation.height",
        ),
        (
            "size the model lacks",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 1920, "height": 1080}}),
            "generation.width",
        ),
        (
            "wrong type",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160, "duration": "five"}}),
            "generation.duration",
        ),
        (
            "unknown generation field",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160, "colour": 1}}),
            "generation",
        ),
        (
            "outputQuality too high",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160, "outputQuality": 100}}),
            "generation.outputQuality",
        ),
        (
            "ttl under a minute",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160, "ttl": 30}}),
            "generation.ttl",
        ),
        (
            "multiPrompt sum",
            json!({"generation": {"width": 3840, "height": 2160, "duration": 5, "providerSettings": {"klingai": {"multiPrompt": [{"prompt": "one shot", "duration": 2}, {"prompt": "two shot", "duration": 2}]}}}}),
            "generation.providerSettings.klingai.multiPrompt",
        ),
        (
            "campaign escaping its folder",
            json!({"campaign": "../other", "generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}}),
            "campaign",
        ),
        (
            "callbackUrl not http",
            json!({"callbackUrl": "ftp://x", "generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}}),
            "callbackUrl",
        ),
        (
            "unknown profile",
            json!({"profile": "cinema", "generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}}),
            "profile",
        ),
        ("no generation", json!({"campaign": "x"}), "generation"),
        (
            "qc floor out of range",
            json!({"qc": {"minSsim": 1.5}, "generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}}),
            "qc.minSsim",
        ),
        (
            "VMAF floor out of range",
            json!({"qc": {"minVmaf": 100}, "generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}}),
            "qc.minVmaf",
        ),
        (
            "unknown qc field",
            json!({"qc": {"maxBlack": 1}, "generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}}),
            "qc",
        ),
        (
            "unknown top-level field",
            json!({"generation": {"positivePrompt": "ok prompt", "width": 3840, "height": 2160}, "priority": 1}),
            "priority",
        ),
    ];
    for (name, body, path) in cases {
        let res = app.post_asset(&body).await;
        assert_eq!(res.status(), 400, "case {name:?}");
        let err: Value = res.json().await.unwrap();
        let fields = err["error"]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("case {name:?}: {err}"));
        assert!(
            fields
                .iter()
                .any(|f| f["path"].as_str().is_some_and(|p| p.starts_with(path))
                    && f["rule"].as_str().is_some_and(|r| !r.is_empty())),
            "case {name:?}: expected an error at {path}, got {err:#}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_accepted_request_answers_202_with_an_id_and_status_url() {
    let app = spawn_app().await;
    let mut body = request(5);
    body["generation"]["numberResults"] = json!(2);
    let res = app.post_asset(&body).await;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let a: Value = res.json().await.unwrap();
    let id = a["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/assets/{id}"));
    assert!(a["status_url"].as_str().unwrap().ends_with(&location));
    assert_eq!(
        a["variations"].as_array().unwrap().len(),
        2,
        "one variation per result"
    );
    let list: Value = app
        .http
        .get(format!("{}/v1/assets?campaign=test", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    assert_eq!(list["assets"][0]["id"], id);
    let other: Value = app
        .http
        .get(format!("{}/v1/assets?campaign=nobody", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["count"], 0);
    app.stop().await;
}
