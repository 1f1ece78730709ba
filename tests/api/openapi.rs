//! `GET /v1/openapi.json`: valid OpenAPI 3.1 by an independent validator
//! (PyPI openapi-spec-validator, installed by `scripts/test.sh`), the same
//! routes as the router both ways, and the limits and shapes it promises.

use crate::helpers::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

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
