//! `GET /v1/openapi.json`: valid OpenAPI 3.1 by an independent validator
//! (PyPI openapi-spec-validator, installed by `scripts/test.sh`), the same
//! routes as the router both ways, and the limits and shapes it promises.

use crate::helpers::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "head"];

/// (METHOD, path) of every `.route(...)` in a router source file, with
/// axum's `{*rest}` written as OpenAPI's `{rest}`.
fn routes_in(src: &str, consts: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (at, _) in src.match_indices(".route(") {
        let args = balanced(&src[at + ".route".len()..]);
        let first = args.split(',').next().unwrap().trim();
        let path = if let Some(lit) = first.strip_prefix('"') {
            lit.trim_end_matches('"').to_string()
        } else {
            let decl = format!("const {first}: &str = \"");
            let i = consts
                .find(&decl)
                .unwrap_or_else(|| panic!("const {first}"))
                + decl.len();
            consts[i..].split('"').next().unwrap().to_string()
        };
        let path = path.replace("{*", "{");
        let rest = &args[first.len()..];
        let mut found = false;
        for m in METHODS {
            for (i, _) in rest.match_indices(&format!("{m}(")) {
                let before = rest[..i].chars().last().unwrap_or(' ');
                if !before.is_alphanumeric() && before != '_' && before != ':' {
                    out.insert((m.to_uppercase(), path.clone()));
                    found = true;
                }
            }
        }
        assert!(found, "no method for route {path}");
    }
    out
}

/// The text inside the parentheses that `s` starts with.
fn balanced(s: &str) -> &str {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced: {s}")
}

fn router_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let api = std::fs::read_to_string(root.join("mod.rs")).unwrap();
    let dash = std::fs::read_to_string(root.join("dashboard/mod.rs")).unwrap();
    let mut all = routes_in(&api, &api);
    all.extend(routes_in(&dash, &dash));
    all
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            if METHODS.contains(&m.as_str()) {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_is_valid_3_1_and_matches_the_router() {
    let app = spawn_app().await;
    // No key needed: the document is public, like the dashboard.
    let res = app
        .http
        .get(format!("{}/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // 1. An independent validator that knows 3.1.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openapi-validator-venv");
    let validator = venv.join("bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run scripts/test.sh (its ensure_openapi_validator installs it)",
        validator.display()
    );
    let file = app.data.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // 2. Every route is documented and every documented path is a route.
    let routes = router_routes();
    assert!(routes.contains(&("DELETE".into(), "/v1/assets/{id}".into())));
    assert!(routes.contains(&("HEAD".into(), "/cdn/{path}".into())));
    let documented = document_routes(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented paths that are no route: {extra:?}"
    );

    // 3. The limits and shapes it promises.
    let schemas = &doc["components"]["schemas"];
    let gen = &schemas["GenerationRequest"]["properties"];
    let model = reelay::runware::ModelSpec::kling_o3_4k();
    assert_eq!(gen["duration"]["minimum"], model.min_duration, "{gen}");
    assert_eq!(gen["duration"]["maximum"], model.max_duration, "{gen}");
    assert_eq!(gen["outputQuality"]["minimum"], 20);
    assert_eq!(gen["outputQuality"]["maximum"], 99);
    assert_eq!(gen["numberResults"]["maximum"], 4);
    assert_eq!(gen["positivePrompt"]["maxLength"], 2500);
    assert_eq!(schemas["GenerationRequest"]["additionalProperties"], false);
    let format = serde_json::to_string(&schemas["OutputFormat"]).unwrap();
    assert!(
        format.contains("\"MP4\"") && format.contains("\"WEBM\""),
        "{format}"
    );
    assert!(schemas["ErrorDetail"]["properties"]["code"].is_object());
    assert_eq!(schemas["ErrorBody"]["required"][0], "error");
    let codes = serde_json::to_string(&schemas["ErrorCode"]).unwrap();
    for code in [
        "invalid_request",
        "unauthorized",
        "idempotency_key_reused",
        "rate_limited",
    ] {
        assert!(codes.contains(code), "{code} not in {codes}");
    }
    assert!(schemas["AssetList"]["properties"]["next_cursor"].is_object());
    let list = &doc["paths"]["/v1/assets"]["get"];
    let params: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["limit", "cursor", "state", "created_after", "x-request-id"] {
        assert!(params.contains(&p), "{p} not in {params:?}");
    }
    let create = &doc["paths"]["/v1/assets"]["post"];
    let create_params = serde_json::to_string(&create["parameters"]).unwrap();
    assert!(create_params.contains("Idempotency-Key"), "{create_params}");
    assert!(create["responses"]["422"].is_object());
    assert!(doc["webhooks"]["asset.callback"]["post"]["requestBody"].is_object());
    assert!(schemas["CallbackBody"]["properties"]["data"].is_object());
    assert!(schemas["PurgeBody"]["properties"]["urls"].is_object());
    let security = doc["components"]["securitySchemes"].as_object().unwrap();
    for s in ["api_key", "events_token", "metrics_token"] {
        assert!(security.contains_key(s), "{s}");
    }
    app.stop().await;
}

/// The schema the document gives the answer of `method path` with `status`,
/// as a root schema that resolves the document's `$ref`s.
pub(crate) fn answer_schema(doc: &Value, path: &str, method: &str, status: u16) -> Value {
    let schema = doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"]
        .clone();
    assert!(
        schema.is_object(),
        "no JSON schema for {method} {path} {status}"
    );
    rooted(doc, &schema)
}

/// `schema` as a root schema that resolves the document's `$ref`s.
fn rooted(doc: &Value, schema: &Value) -> Value {
    let mut root = serde_json::Map::new();
    root.insert("components".into(), doc["components"].clone());
    root.extend(schema.as_object().unwrap().clone());
    Value::Object(root)
}

/// Validates each (label, schema, instance) with the venv's `jsonschema`
/// (Draft 2020-12, what OpenAPI 3.1 schemas are); the labels that failed,
/// with the validator's words.
pub(crate) fn invalid(dir: &Path, cases: &[(String, Value, Value)]) -> Vec<String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openapi-validator-venv");
    let file = dir.join("answers.json");
    let list: Vec<Value> = cases
        .iter()
        .map(|(l, s, i)| serde_json::json!({"label": l, "schema": s, "instance": i}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator
for c in json.load(open(sys.argv[1])):
    errs = list(Draft202012Validator(c["schema"]).iter_errors(c["instance"]))
    for e in errs[:3]:
        at = "/".join(map(str, e.absolute_path))
        print(f'{c["label"]}\tat /{at}: {e.message[:400]}')
"#;
    let out = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the validator did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// What the server answers, live, is what the document says: every field
/// of each answer is documented (schemas are closed) and has the documented
/// type. Covers the asset in each phase, lists, campaigns, options,
/// workers, preflight, the intake, an error, and the signed callback.
#[tokio::test]
async fn live_answers_and_callbacks_match_their_documented_schemas() {
    use axum::extract::State;
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let hooks = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(got): State<Arc<Mutex<Vec<Value>>>>, body: axum::Json<Value>| async move {
                    got.lock().unwrap().push(body.0);
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hooks).await.unwrap() });

    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(format!("{}/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut req = app
            .http
            .request(method, format!("{}{path}", app.url))
            .bearer_auth(KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let mut cases: Vec<(String, Value, Value)> = Vec::new();
    let mut case = |label: &str, path: &str, method: &str, status: u16, answer: Value| {
        cases.push((
            format!("{method} {path} {status} ({label})"),
            answer_schema(&doc, path, method, status),
            answer,
        ));
    };

    // A master uploaded by hand, through to published, with its callback.
    app.put_master(
        "masters/schemas/good.mp4",
        tiny_clip(640, 360, 2, true, 5).await,
        &[("reelay-callback-url", hook.as_str())],
    )
    .await;
    let assets = wait_for_campaign(&app, "schemas", Duration::from_secs(120), |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    assert_eq!(assets[0]["status"], "published", "{assets:#?}");
    let id = assets[0]["id"].as_str().unwrap().to_string();
    let (s, a) = call(reqwest::Method::GET, format!("/v1/assets/{id}"), None).await;
    assert!(a["variations"][0]["qc"]["checks"].is_array(), "{a:#}");
    assert!(
        a["variations"][0]["published"]["renditions"][0].is_object(),
        "{a:#}"
    );
    case("published, detail", "/v1/assets/{id}", "get", s, a);
    let (s, a) = call(
        reqwest::Method::GET,
        "/v1/assets?campaign=schemas&limit=1".into(),
        None,
    )
    .await;
    case("list", "/v1/assets", "get", s, a);
    let (s, a) = call(reqwest::Method::GET, "/v1/campaigns/schemas".into(), None).await;
    case("campaign", "/v1/campaigns/{id}", "get", s, a);
    let (s, a) = call(reqwest::Method::GET, "/v1/options".into(), None).await;
    assert!(!a["destinations"].as_array().unwrap().is_empty(), "{a:#}");
    case("options", "/v1/options", "get", s, a);
    let (s, a) = call(reqwest::Method::GET, "/v1/workers".into(), None).await;
    case("workers", "/v1/workers", "get", s, a);
    let (s, a) = call(
        reqwest::Method::POST,
        format!("/v1/assets/{id}/reprocess"),
        Some(serde_json::json!({})),
    )
    .await;
    case("reprocess", "/v1/assets/{id}/reprocess", "post", s, a);

    // A generated asset: accepted, then cancelled; a preflight; an error.
    let mut body = request(3);
    body["campaign"] = "schemas-gen".into();
    body["callbackUrl"] = hook.as_str().into();
    let (s, a) = call(
        reqwest::Method::POST,
        "/v1/assets".into(),
        Some(body.clone()),
    )
    .await;
    let gen = a["id"].as_str().unwrap().to_string();
    case("accepted", "/v1/assets", "post", s, a);
    let (s, a) = call(reqwest::Method::DELETE, format!("/v1/assets/{gen}"), None).await;
    case("cancelled", "/v1/assets/{id}", "delete", s, a);
    body["destinations"] = serde_json::json!(["iab-olv"]);
    let (s, a) = call(
        reqwest::Method::POST,
        "/v1/assets/preflight".into(),
        Some(body.clone()),
    )
    .await;
    case("plan", "/v1/assets/preflight", "post", s, a);
    body["generation"]["duration"] = 1.into();
    let (s, a) = call(reqwest::Method::POST, "/v1/assets".into(), Some(body)).await;
    case("invalid", "/v1/assets", "post", s, a);
    let res = app
        .http
        .post(format!("{}/v1/events/s3", app.url))
        .bearer_auth(app.events_token())
        .json(&serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "elsewhere"}, "object": {"key": "x.mp4", "size": 1}}}]}))
        .send()
        .await
        .unwrap();
    let s = res.status().as_u16();
    case(
        "intake",
        "/v1/events/s3",
        "post",
        s,
        res.json().await.unwrap(),
    );

    // The callbacks (published, and cancelled) against the webhook's schema.
    let start = std::time::Instant::now();
    while got.lock().unwrap().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "callbacks so far: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hook_schema = rooted(
        &doc,
        &doc["webhooks"]["asset.callback"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"],
    );
    for (i, cb) in got.lock().unwrap().iter().enumerate() {
        cases.push((
            format!("callback {i} ({})", cb["type"]),
            hook_schema.clone(),
            cb.clone(),
        ));
    }

    let labels: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    assert!(
        labels.iter().any(|l| l.starts_with("post /v1/assets 202")),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.starts_with("post /v1/assets 400")),
        "{labels:?}"
    );
    // The check can fail: an undocumented field and a wrong type are caught.
    let mut extra = cases[0].clone();
    extra.0 = "control: extra field".into();
    extra.2["variations"][0]["undocumented"] = true.into();
    let mut wrong = cases[0].clone();
    wrong.0 = "control: wrong type".into();
    wrong.2["ttl_secs"] = "long".into();
    let controls = invalid(&app.data, &[extra, wrong]);
    assert!(
        controls
            .iter()
            .any(|l| l.starts_with("control: extra field\t")),
        "{controls:?}"
    );
    assert!(
        controls
            .iter()
            .any(|l| l.starts_with("control: wrong type\t")),
        "{controls:?}"
    );

    let failures = invalid(&app.data, &cases);
    assert!(
        failures.is_empty(),
        "answers the document does not describe:\n{}",
        failures.join("\n")
    );
    app.stop().await;
}
