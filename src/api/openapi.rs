//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, derived with utoipa
//! from the `#[utoipa::path]` on each handler and the `ToSchema` of the
//! types they read and write. Callbacks and purges go in as 3.1 `webhooks`;
//! the model's duration limits are filled in from the served `ModelSpec`.

use super::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};
use utoipa::{OpenApi, PartialSchema, ToSchema};

/// The JSON body of every 4xx and 5xx (`api::error`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    pub message: String,
    /// Every offending field or parameter (400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldErrorDoc>>,
    /// Seconds to wait before retrying (429 only; also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

pub use super::error::ErrorCode;

/// One field that breaks a rule: its JSON path (or parameter) and the rule.
#[derive(Serialize, ToSchema)]
pub struct FieldErrorDoc {
    #[schema(example = "generation.duration")]
    pub path: String,
    pub rule: String,
}

/// The body of `POST /v1/assets` (read field by field in `assets::create`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAssetRequest {
    /// Runware `videoInference` fields the caller may set.
    pub generation: crate::runware::GenerationRequest,
    /// One of the configured delivery profiles (default "default"; see GET /v1/options).
    pub profile: Option<String>,
    /// Campaign id (default "default"), as `domain::CampaignId::RULE` says.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,39}$")]
    pub campaign: Option<String>,
    /// HTTPS URL that receives signed `asset.*` callbacks.
    #[schema(pattern = "^https?://")]
    pub callback_url: Option<String>,
    /// Per-asset QC overrides, each optional and only ever stricter than
    /// the profile: `minSsim` (0.5-0.999), `minVmaf` (50-99: the VMAF floor
    /// at the scoring size, where ffmpeg has libvmaf), `maxBlackSecs`,
    /// `maxFreezeSecs`, `maxSilenceSecs` (0-10), `loudnessToleranceLu`
    /// (0.1-5). An unknown field or a value out of range is a 400 naming it.
    #[schema(value_type = Option<Object>)]
    pub qc: Option<Value>,
    /// Configured destination names (`[destinations.NAME]`, listed by GET
    /// /v1/options), each once; the request is refused 400 when one of them
    /// can never accept it.
    pub destinations: Option<Vec<String>>,
    /// The ad's VAST fields (adTitle, advertiser, clickThrough,
    /// clickTracking, impression, tracking, error, adVerifications): https
    /// URLs, VAST macros such as `[ERRORCODE]` kept verbatim.
    #[schema(value_type = Option<Object>)]
    pub vast: Option<Value>,
    /// Caption tracks (as Mux's text tracks), each published as
    /// `captions/{language}.vtt`, listed in the HLS master playlist as a
    /// SUBTITLES group and in VAST as `ClosedCaptionFiles`. The WebVTT is
    /// checked: the `WEBVTT` header, cue timings well formed and in start
    /// order, every cue ending within the requested duration; a problem is
    /// a 400 naming `captions[i].text` (or `captions[i].url`, for a
    /// document given by URL) and the rule.
    #[schema(max_items = 16)]
    pub captions: Option<Vec<CaptionRequest>>,
}

/// One caption track of `POST /v1/assets` (read by `publish::captions::parse`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptionRequest {
    /// BCP 47 language tag (`en`, `fr-CA`), one track per language.
    #[schema(pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", max_length = 35)]
    pub language: String,
    /// The name players show (default: the language); 1-64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub label: Option<String>,
    /// The WebVTT document (W3C WebVTT), at most 256 KiB. Give it here or
    /// as `url`, not both.
    #[schema(max_length = 262144)]
    pub text: Option<String>,
    /// Where reelay fetches the WebVTT document at request time (http or
    /// https; public addresses only, no redirects; a 200 within 10 s, at
    /// most 256 KiB of UTF-8), then checks it as `text`; a problem is a
    /// 400 naming `captions[i].url`.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
}

/// The optional body of `POST /v1/assets/{id}/reprocess` (read in
/// `assets::reprocess`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprocessRequest {
    /// Another configured profile to deliver (default: the asset's own).
    pub profile: Option<String>,
}

impl PartialSchema for crate::runware::FramePosition {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "The frame an image pins: \"first\", \"last\", 0 or -1",
            ))
            .enum_values(Some([json!("first"), json!("last"), json!(0), json!(-1)]))
            .into()
    }
}
impl ToSchema for crate::runware::FramePosition {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FramePosition")
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "reelay", description = "Ad-ops requests in, delivery-ready video on a CDN path out."),
    paths(
        super::health::show,
        super::metrics::show,
        serve,
        super::assets::create,
        super::preflight::preflight,
        super::listing::list,
        super::assets::show,
        super::cancel::cancel,
        super::assets::reprocess,
        super::listing::campaign,
        super::thumbnails::thumbnail,
        super::options::show,
        super::webhooks::runware,
        super::events::s3,
        super::cdn::serve,
        super::workers::list,
    ),
    components(schemas(ErrorBody, CreateAssetRequest, crate::api::listing::AssetList, crate::api::workers::WorkersView, crate::api::workers::WorkerView, crate::api::workers::RunningStepView)),
    security(("api_key" = [])),
)]
pub struct ApiDoc;

/// The dashboard's page and static files (closures in `api::dashboard`).
const DASHBOARD: &[(&str, &str)] = &[
    ("/", "text/html"),
    ("/dashboard/app.js", "text/javascript"),
    ("/dashboard/player.js", "text/javascript"),
    ("/dashboard/form.js", "text/javascript"),
    ("/dashboard/app.css", "text/css"),
    (super::dashboard::HLS_PATH, "text/javascript"),
];

/// The whole document as JSON, with the duration limits of `model`.
pub fn document(model: &crate::runware::ModelSpec) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    doc["openapi"] = json!("3.1.0");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let d = &mut doc["components"]["schemas"]["GenerationRequest"]["properties"]["duration"];
    if d.is_object() {
        d["minimum"] = json!(model.min_duration);
        d["maximum"] = json!(model.max_duration);
    }
    for (path, ty) in DASHBOARD {
        doc["paths"][*path] = json!({"get": {
            "tags": ["dashboard"], "summary": "The dashboard", "security": [],
            "responses": {"200": {"description": "The file", "content": {*ty: {"schema": {"type": "string"}}}}}
        }});
    }
    doc["components"]["securitySchemes"] = json!({
        "api_key": {"type": "http", "scheme": "bearer", "description": "One of the configured API keys"},
        "events_token": {"type": "http", "scheme": "bearer", "description": "events.token, as a Bearer token or the password of HTTP Basic auth"},
        "metrics_token": {"type": "http", "scheme": "bearer", "description": "metrics.token (an API key works too)"},
        "webhook_token": {"type": "apiKey", "in": "query", "name": "token", "description": "The per-variation token in the webhookURL reelay gave Runware"}
    });
    let mut schemas = Vec::new();
    <crate::views::CallbackBody as ToSchema>::schemas(&mut schemas);
    for (name, s) in schemas {
        doc["components"]["schemas"][name] = serde_json::to_value(s).unwrap_or(Value::Null);
    }
    doc["components"]["schemas"]["CallbackBody"] =
        serde_json::to_value(<crate::views::CallbackBody as PartialSchema>::schema())
            .unwrap_or(Value::Null);
    doc["components"]["schemas"]["PurgeBody"] =
        serde_json::to_value(<crate::views::PurgeBody<'static> as PartialSchema>::schema())
            .unwrap_or(Value::Null);
    let hook = |schema: &str, what: &str| {
        json!({"post": {
            "summary": what,
            "description": "Signed with the callback secret (headers reelay-signature and reelay-timestamp); retried with backoff until a 2xx.",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
            "responses": {"2XX": {"description": "Received"}}
        }})
    };
    request_id(&mut doc);
    close_objects(&mut doc["components"]["schemas"]);
    doc["webhooks"] = json!({
        "asset.callback": hook("CallbackBody", "asset.* events (published, rejected, failed, cancelled) POSTed to the asset's callbackUrl"),
        "cdn.purge": hook("PurgeBody", "cdn.purge POSTed to cdn.purge_url when published pointers change"),
    });
    doc
}

/// Every object schema with properties says `additionalProperties: false`:
/// reelay's answers carry exactly the documented fields (the test validates
/// live answers against this), and its requests refuse unknown ones. A
/// flattened struct (utoipa's `allOf` of a `$ref` and an inline object) is
/// merged into one object first, as a closed part of an `allOf` would refuse
/// the other part's fields.
fn close_objects(schemas: &mut Value) {
    let snapshot = schemas.clone();
    let Some(map) = schemas.as_object_mut() else {
        return;
    };
    for schema in map.values_mut() {
        merge_all_of(schema, &snapshot);
        close(schema);
    }
}

fn merge_all_of(schema: &mut Value, schemas: &Value) {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array).cloned() else {
        return;
    };
    let mut properties = serde_json::Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in &parts {
        let resolved = match part["$ref"].as_str() {
            Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
            None => part,
        };
        let Some(props) = resolved["properties"].as_object() else {
            return; // not a plain merge of objects: leave it as it is
        };
        properties.extend(props.clone());
        required.extend(resolved["required"].as_array().cloned().unwrap_or_default());
    }
    let description = schema.get("description").cloned();
    *schema = json!({"type": "object", "properties": properties, "required": required});
    if let Some(d) = description {
        schema["description"] = d;
    }
}

fn close(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
                obj.insert("additionalProperties".into(), Value::Bool(false));
            }
            for v in obj.values_mut() {
                close(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

/// `x-request-id` on every operation: taken from the client when sent,
/// made otherwise, and echoed on every answer.
fn request_id(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for op in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, op) in op.iter_mut().filter(|(_, o)| o.is_object()) {
            // One handler serves GET and HEAD; operation ids must be unique.
            if method == "head" {
                if let Some(id) = op["operationId"].as_str() {
                    op["operationId"] = json!(format!("{id}_head"));
                }
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut params = params;
            params.push(
                json!({"name": "x-request-id", "in": "header", "required": false,
                "description": "Kept when sent (else made); in every log line of the request",
                "schema": {"type": "string", "maxLength": 128}}),
            );
            op["parameters"] = Value::Array(params);
            if let Some(responses) = op["responses"].as_object_mut() {
                for r in responses.values_mut() {
                    r["headers"]["x-request-id"] =
                        json!({"description": "The request id", "schema": {"type": "string"}});
                }
            }
        }
    }
}

#[utoipa::path(get, operation_id = "get_openapi", path = "/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
#[tracing::instrument(name = "openapi.show", skip_all)]
pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.model))
}
