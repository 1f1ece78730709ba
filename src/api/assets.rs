//! `POST /v1/assets`, `GET /v1/assets/{id}`, `POST /v1/assets/{id}/reprocess`
//! (the list is `api::listing`, cancel `api::cancel`).

use super::{ApiError, ApiKey, AppState, JsonBody};
use crate::domain::{AssetId, CallbackUrl, CampaignId};
use crate::jobs::model::{Brief, Source};
use crate::jobs::store::{now_ms, Asset, NewVariation};
use crate::policy::QcOverrides;
use crate::runware::validate::{parse_generation, validate_generation};
use crate::runware::FieldError;
use crate::tokens::{sha256_hex, webhook_token};
use crate::views::{AssetDetail, AssetView};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

const TOP_LEVEL: &[&str] = &[
    "generation",
    "profile",
    "campaign",
    "callbackUrl",
    "qc",
    "destinations",
    "vast",
    "captions",
];

/// A request that passed every check, destinations included.
pub(super) struct Validated {
    campaign: String,
    profile: String,
    callback_url: Option<String>,
    qc: Option<QcOverrides>,
    req: crate::runware::GenerationRequest,
    destinations: Vec<String>,
    vast: crate::publish::vast_fields::VastFields,
    captions: Vec<crate::publish::captions::Caption>,
    pub plan: crate::destinations::preflight::Plan,
}

#[utoipa::path(post, operation_id = "create_asset", path = "/v1/assets", tag = "assets", request_body = crate::api::openapi::CreateAssetRequest, params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body within 24 h return the first response (max 255 chars)")), responses((status = 202, description = "Accepted: the asset is created and its work queued; Location names it", body = crate::views::AssetView), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 409, description = "The state does not allow it, or the Idempotency-Key is in use", body = crate::api::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody), (status = 422, description = "Idempotency-Key reused with a different body", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.create", skip_all)]
pub async fn create(
    _key: ApiKey,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, HeaderMap, Json<AssetView>), ApiError> {
    let Validated {
        campaign,
        profile,
        callback_url,
        qc,
        req,
        destinations,
        vast,
        captions,
        plan: _,
    } = validate_fetching(&state, body).await?;
    let asset_id = AssetId::generate();
    let id = asset_id.to_string();
    let now = now_ms();
    let ttl_secs = req
        .ttl
        .map(|t| t as i64)
        .unwrap_or(state.settings.policy.default_ttl_secs as i64);
    let ext = req.effective_output_format().extension();
    let results = req.effective_number_results() as i64;
    let asset = Asset {
        id: id.clone(),
        campaign: campaign.clone(),
        profile,
        brief: Brief::Generation(Box::new(req)),
        callback_url,
        ttl_secs,
        created_at: now,
        qc,
        source: Source::Generated,
        destinations,
        vast,
        captions,
    };
    let variations: Vec<NewVariation> = (0..results)
        .map(|i| {
            let vid = asset_id.variation(i).as_str().to_string();
            // One key per task: the upload URL names this task and no other.
            let task = Uuid::new_v4();
            NewVariation {
                webhook_token_sha256: sha256_hex(&webhook_token(&state.webhook_secret, &vid)),
                task_uuid: task.to_string(),
                master_key: crate::domain::master_key::for_task(
                    &campaign, &asset_id, i, &task, ext,
                ),
                idx: i,
                id: vid,
            }
        })
        .collect();
    state.store.create_asset(&asset, &variations).await?;
    state.wake.notify_waiters();
    tracing::info!(asset = %id, campaign = %campaign, variations = variations.len(), "asset requested");

    let view = asset_view(&state, &asset, true).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/v1/assets/{id}"))?,
    );
    Ok((StatusCode::ACCEPTED, headers, Json(view)))
}

/// How long fetching one caption URL may take, headers and body.
pub const CAPTION_FETCH_SECS: u64 = 10;

/// The request's `captions[i].url`s replaced by the WebVTT each names, so
/// that [`validate`] checks them as it checks `text`: fetched through the
/// outbound guard (public addresses only unless
/// `outbound.allowed_private_networks`, no redirects, no proxy), within
/// [`CAPTION_FETCH_SECS`] and `publish::captions::MAX_BYTES`, a 200 in
/// UTF-8. Each problem is a 400 naming `captions[i].url`; a problem of the
/// fetched document names it too.
async fn fetch_caption_urls(
    state: &AppState,
    mut body: Value,
) -> Result<(Value, Vec<usize>), ApiError> {
    use crate::publish::captions::MAX_BYTES;
    let Some(items) = body
        .get_mut("captions")
        .and_then(Value::as_array_mut)
        .filter(|l| l.iter().any(|c| c.get("url").is_some()))
    else {
        return Ok((body, Vec::new()));
    };
    let guard = crate::outbound::Guard::new(&state.settings.outbound)?;
    let client = guard.client(Duration::from_secs(CAPTION_FETCH_SECS))?;
    let mut errors = Vec::new();
    let mut fetched = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        let Some(obj) = item.as_object_mut() else {
            continue;
        };
        let Some(url) = obj.remove("url") else {
            continue;
        };
        let path = format!("captions[{i}].url");
        let mut bad = |rule: String| {
            errors.push(FieldError {
                path: path.clone(),
                rule,
            })
        };
        if obj.contains_key("text") {
            bad("give the WebVTT as url or as text, not both".into());
            continue;
        }
        let Some(url) = url.as_str() else {
            bad("must be an http(s) URL of a WebVTT document".into());
            continue;
        };
        match fetch_text(&guard, &client, url, MAX_BYTES).await {
            Ok(text) => {
                obj.insert("text".into(), Value::String(text));
                fetched.push(i);
            }
            Err(rule) => bad(rule),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok((body, fetched))
}

/// [`validate`] of a body whose caption URLs [`fetch_caption_urls`]
/// fetched: a problem with a fetched track's text names its `url`.
pub(super) async fn validate_fetching(
    state: &AppState,
    body: Value,
) -> Result<Validated, ApiError> {
    let (body, fetched) = fetch_caption_urls(state, body).await?;
    validate(state, &body).map_err(|e| match e {
        ApiError::Invalid {
            message,
            mut fields,
        } => {
            for f in &mut fields {
                for i in &fetched {
                    if f.path == format!("captions[{i}].text") {
                        f.path = format!("captions[{i}].url");
                    }
                }
            }
            ApiError::Invalid { message, fields }
        }
        other => other,
    })
}

/// GET `url` through the guard: its body as UTF-8 text of at most `max`
/// bytes, or the rule it broke.
async fn fetch_text(
    guard: &crate::outbound::Guard,
    client: &reqwest::Client,
    url: &str,
    max: usize,
) -> Result<String, String> {
    let u = guard
        .check_url(url)
        .map_err(|e| format!("must be an http(s) URL reelay may fetch ({e})"))?;
    let failed = |e: &reqwest::Error| {
        if e.is_timeout() {
            format!("did not answer within {CAPTION_FETCH_SECS} s")
        } else {
            format!("could not be fetched: {}", crate::outbound::client_text(e))
        }
    };
    let mut res = client.get(u).send().await.map_err(|e| failed(&e))?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(format!("answered HTTP {}, not 200", res.status().as_u16()));
    }
    let too_big = || format!("must be at most {max} bytes");
    if res.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| failed(&e))? {
        if bytes.len() + chunk.len() > max {
            return Err(too_big());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| "must be a UTF-8 WebVTT document".into())
}

/// Every check of a `POST /v1/assets` body, all errors at once; nothing
/// is stored or submitted.
pub(super) fn validate(state: &AppState, body: &Value) -> Result<Validated, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::field("$", "must be a JSON object"));
    };
    let mut errors = Vec::new();
    for k in obj.keys() {
        if !TOP_LEVEL.contains(&k.as_str()) {
            errors.push(FieldError {
                path: k.clone(),
                rule: format!("unknown field; allowed: {}", TOP_LEVEL.join(", ")),
            });
        }
    }
    let campaign = match obj.get("campaign") {
        None => "default".to_string(),
        Some(c) => match c.as_str().map(CampaignId::parse) {
            Some(Ok(c)) => c.into_string(),
            _ => {
                errors.push(FieldError {
                    path: "campaign".into(),
                    rule: CampaignId::RULE.into(),
                });
                String::new()
            }
        },
    };
    let profile = match obj.get("profile") {
        None => "default".to_string(),
        Some(Value::String(p)) if state.settings.profiles.contains_key(p) => p.clone(),
        Some(_) => {
            let known: Vec<&str> = state.settings.profiles.keys().map(String::as_str).collect();
            errors.push(FieldError {
                path: "profile".into(),
                rule: format!(
                    "must be one of the configured profiles: {}",
                    known.join(", ")
                ),
            });
            String::new()
        }
    };
    let callback_url = match obj.get("callbackUrl") {
        None | Some(Value::Null) => None,
        Some(u) => match u.as_str().map(CallbackUrl::parse) {
            Some(Ok(u)) => {
                let guard = crate::outbound::Guard::new(&state.settings.outbound)?;
                match guard.check_url(u.as_str()) {
                    Ok(_) => Some(u.into_string()),
                    Err(_) => {
                        errors.push(FieldError {
                            path: "callbackUrl".into(),
                            rule: CallbackUrl::PUBLIC_RULE.into(),
                        });
                        None
                    }
                }
            }
            _ => {
                errors.push(FieldError {
                    path: "callbackUrl".into(),
                    rule: CallbackUrl::RULE.into(),
                });
                None
            }
        },
    };
    let qc = match obj.get("qc") {
        None | Some(Value::Null) => None,
        Some(q) => match serde_path_to_error::deserialize::<_, QcOverrides>(q.clone()) {
            Ok(o) => {
                for (field, rule) in o.validate() {
                    errors.push(FieldError {
                        path: format!("qc.{field}"),
                        rule,
                    });
                }
                Some(o)
            }
            Err(e) => {
                let path = e.path().to_string();
                errors.push(FieldError {
                    path: if path == "." { "qc".into() } else { format!("qc.{path}") },
                    rule: format!(
                        "{} (fields: minSsim, minVmaf, maxBlackSecs, maxFreezeSecs, maxSilenceSecs, loudnessToleranceLu; they can only make the profile stricter)",
                        e.inner()
                    ),
                });
                None
            }
        },
    };
    let generation = match obj.get("generation") {
        None => {
            errors.push(FieldError {
                path: "generation".into(),
                rule: "is required: the Runware videoInference parameters".into(),
            });
            None
        }
        Some(g) => match parse_generation(g, "generation") {
            Ok(req) => match validate_generation(&req, &state.model, "generation") {
                Ok(()) => Some(req),
                Err(fields) => {
                    errors.extend(fields);
                    None
                }
            },
            Err(fields) => {
                errors.extend(fields);
                None
            }
        },
    };
    let destinations = super::preflight::names(state, obj.get("destinations"), &mut errors);
    let vast = match obj.get("vast") {
        None | Some(Value::Null) => Default::default(),
        Some(v) => crate::publish::vast_fields::VastFields::parse(v).unwrap_or_else(|bad| {
            errors.extend(
                bad.into_iter()
                    .map(|(path, rule)| FieldError { path, rule }),
            );
            Default::default()
        }),
    };
    // Cues must end within the requested length (unknown with an input
    // video, whose length the output takes).
    let duration = generation
        .as_ref()
        .and_then(|g| g.effective_duration())
        .map(f64::from);
    let captions = match obj.get("captions") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => crate::publish::captions::parse(v, duration).unwrap_or_else(|bad| {
            errors.extend(
                bad.into_iter()
                    .map(|(path, rule)| FieldError { path, rule }),
            );
            Vec::new()
        }),
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let req = generation.expect("validated above");
    let plan = super::preflight::plan(state, &destinations, &req).map_err(ApiError::fields)?;
    Ok(Validated {
        campaign,
        profile,
        callback_url,
        qc,
        req,
        destinations,
        vast,
        captions,
        plan,
    })
}

#[utoipa::path(get, operation_id = "get_asset", path = "/v1/assets/{id}", tag = "assets", params(("id" = String, Path, description = "Asset id (ast_...)")), responses((status = 200, description = "The asset", body = crate::views::AssetView), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.show", skip_all)]
pub async fn show(
    _key: ApiKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AssetView>, ApiError> {
    // An id reelay never makes is no asset: no query for it.
    let asset = match AssetId::parse(&id) {
        Some(id) => state.store.asset(id.as_str()).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::NotFound(format!("asset {id}")))?;
    Ok(Json(asset_view(&state, &asset, true).await?))
}

/// `POST /v1/assets/{id}/reprocess`, body optional `{"profile": "..."}`:
/// reruns transcode, QC and publish from the stored master of every
/// variation that has one. The new set goes live when its pointers flip at
/// the end of publishing; until then the old pointers stay as they are.
#[utoipa::path(post, operation_id = "reprocess_asset", path = "/v1/assets/{id}/reprocess", tag = "assets", params(("id" = String, Path, description = "Asset id (ast_...)"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body within 24 h return the first response (max 255 chars)")), request_body(content = Option<crate::api::openapi::ReprocessRequest>, description = "Optional: another profile"), responses((status = 202, description = "Reprocessing", body = crate::views::AssetView), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 409, description = "The state does not allow it, or the Idempotency-Key is in use", body = crate::api::openapi::ErrorBody), (status = 422, description = "Idempotency-Key reused with a different body", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.reprocess", skip_all)]
pub async fn reprocess(
    _key: ApiKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<AssetView>), ApiError> {
    // An id reelay never makes is no asset: no query for it.
    let asset = match AssetId::parse(&id) {
        Some(id) => state.store.asset(id.as_str()).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::NotFound(format!("asset {id}")))?;
    let mut profile = asset.profile.clone();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::field("$", format!("must be a JSON object ({e})")))?;
        let Some(obj) = v.as_object() else {
            return Err(ApiError::field("$", "must be a JSON object"));
        };
        let mut errors = Vec::new();
        for k in obj.keys().filter(|k| k.as_str() != "profile") {
            errors.push(FieldError {
                path: k.clone(),
                rule: "unknown field; allowed: profile".into(),
            });
        }
        match obj.get("profile") {
            None => {}
            Some(Value::String(p)) if state.settings.profiles.contains_key(p) => {
                profile = p.clone()
            }
            Some(_) => {
                let known: Vec<&str> = state.settings.profiles.keys().map(String::as_str).collect();
                errors.push(FieldError {
                    path: "profile".into(),
                    rule: format!(
                        "must be one of the configured profiles: {}",
                        known.join(", ")
                    ),
                })
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
    }
    let note = format!("reprocess requested (profile {profile})");
    let restarted = state.store.reprocess(&asset.id, &profile, &note).await?;
    if restarted.is_empty() {
        return Err(ApiError::Conflict(
            "no variation of this asset has a verified master to reprocess".into(),
        ));
    }
    state.wake.notify_waiters();
    tracing::info!(asset = %asset.id, variations = restarted.len(), %profile, "reprocess requested");
    let asset = state.store.asset(&id).await?.unwrap_or(asset);
    let mut view = asset_view(&state, &asset, true).await?;
    view.reprocessing = Some(restarted);
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// One asset with its variations, their history and its notifications.
async fn asset_view(state: &AppState, a: &Asset, detail: bool) -> Result<AssetView, ApiError> {
    let rows = state.store.variations_of(&a.id).await?;
    let detail = if detail {
        Some(AssetDetail {
            history: state.store.transitions_of_asset(&a.id).await?,
            notifications: state.store.outbox_of_asset(&a.id).await?,
        })
    } else {
        None
    };
    Ok(AssetView::new(&state.public_url, a, &rows, detail))
}
