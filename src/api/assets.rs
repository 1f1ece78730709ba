//! `POST /v1/assets`, `GET /v1/assets/{id}`, `GET /v1/assets?campaign=`.

use super::{ApiError, ApiKey, AppState, JsonBody};
use crate::jobs::pipeline::{rfc3339, sha256_hex, webhook_token};
use crate::jobs::store::{now_ms, AssetRow, NewVariation, VariationRow, SOURCE_GENERATED};
use crate::jobs::State as JobState;
use crate::policy::{QcOverrides, QcReport};
use crate::publish::Manifest;
use crate::runware::validate::{parse_generation, validate_generation};
use crate::runware::FieldError;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

const TOP_LEVEL: &[&str] = &["generation", "profile", "campaign", "callbackUrl", "qc"];

pub async fn create(
    _key: ApiKey,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, HeaderMap, Json<Value>), ApiError> {
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
        Some(Value::String(c)) if valid_campaign(c) => c.clone(),
        Some(_) => {
            errors.push(FieldError {
                path: "campaign".into(),
                rule: "must be 1-40 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit".into(),
            });
            String::new()
        }
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
        Some(Value::String(u)) if is_http_url(u) => Some(u.clone()),
        Some(_) => {
            errors.push(FieldError {
                path: "callbackUrl".into(),
                rule: "must be an absolute http or https URL".into(),
            });
            None
        }
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
                        "{} (fields: minSsim, maxBlackSecs, maxFreezeSecs, maxSilenceSecs, loudnessToleranceLu; they can only make the profile stricter)",
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
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let req = generation.expect("validated above");

    // 80 random bits are plenty, and short ids keep object keys short.
    let id = format!("ast_{}", &Uuid::new_v4().simple().to_string()[..20]);
    let now = now_ms();
    let asset = AssetRow {
        id: id.clone(),
        campaign: campaign.clone(),
        profile,
        request_json: serde_json::to_string(&req)?,
        callback_url,
        ttl_secs: req
            .ttl
            .map(|t| t as i64)
            .unwrap_or(state.settings.policy.default_ttl_secs as i64),
        created_at: now,
        qc_json: qc.map(|q| serde_json::to_string(&q)).transpose()?,
        source: SOURCE_GENERATED.into(),
    };
    let ext = req.effective_output_format().extension();
    let variations: Vec<NewVariation> = (0..req.effective_number_results() as i64)
        .map(|i| {
            let vid = format!("{id}_v{i}");
            NewVariation {
                webhook_token_sha256: sha256_hex(&webhook_token(&state.webhook_secret, &vid)),
                task_uuid: Uuid::new_v4().to_string(),
                master_key: format!("masters/{campaign}/{id}/v{i}/master.{ext}"),
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

pub async fn show(
    _key: ApiKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let asset = state
        .store
        .asset(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("asset {id}")))?;
    Ok(Json(asset_view(&state, &asset, true).await?))
}

/// `POST /v1/assets/{id}/reprocess`, body optional `{"profile": "..."}`:
/// reruns transcode, QC and publish from the stored master of every
/// variation that has one. The new set goes live when its pointers flip at
/// the end of publishing; until then the old pointers stay as they are.
pub async fn reprocess(
    _key: ApiKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let asset = state
        .store
        .asset(&id)
        .await?
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
    view["reprocessing"] = json!(restarted);
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    campaign: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    _key: ApiKey,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let assets = state
        .store
        .list_assets(q.campaign.as_deref(), limit)
        .await?;
    let mut out = Vec::with_capacity(assets.len());
    let mut total_cost = 0.0;
    for a in &assets {
        let v = asset_view(&state, a, false).await?;
        total_cost += v["cost_usd"].as_f64().unwrap_or(0.0);
        out.push(v);
    }
    Ok(Json(json!({
        "campaign": q.campaign,
        "count": out.len(),
        "cost_usd": round_cents(total_cost),
        "assets": out,
    })))
}

pub fn valid_campaign(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 40
        && c.chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
        && !c.contains("..")
}

pub fn is_http_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn round_cents(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}

/// The asset's overall status from its variations' states.
fn aggregate(states: &[JobState]) -> &'static str {
    if states.iter().any(|s| !s.is_terminal()) {
        "processing"
    } else if states.iter().all(|s| *s == JobState::Published) {
        "published"
    } else if states.contains(&JobState::Published) {
        "partially_published"
    } else if states.iter().all(|s| *s == JobState::Rejected) {
        "rejected"
    } else if states.iter().all(|s| *s == JobState::Expired) {
        "expired"
    } else {
        "failed"
    }
}

async fn asset_view(state: &AppState, a: &AssetRow, detail: bool) -> Result<Value, ApiError> {
    let rows = state.store.variations_of(&a.id).await?;
    let states: Vec<JobState> = rows.iter().map(VariationRow::state).collect();
    let cost: f64 = rows.iter().filter_map(VariationRow::total_cost).sum();
    let mut variations = Vec::new();
    for v in &rows {
        variations.push(variation_view(state, v, detail).await?);
    }
    let request: Value = serde_json::from_str(&a.request_json).unwrap_or(Value::Null);
    Ok(json!({
        "id": a.id,
        "campaign": a.campaign,
        "profile": a.profile,
        "source": a.source,
        "status": aggregate(&states),
        "created_at": rfc3339(a.created_at),
        "ttl_secs": a.ttl_secs,
        "status_url": format!("{}/v1/assets/{}", state.public_url.trim_end_matches('/'), a.id),
        "cost_usd": round_cents(cost),
        "callback_url": a.callback_url,
        "generation": if detail { request } else { Value::Null },
        "variations": variations,
        "notifications": if detail { notifications(state, &a.id).await? } else { Value::Null },
    }))
}

/// Callbacks and purges of the asset and where their delivery stands.
async fn notifications(state: &AppState, asset_id: &str) -> Result<Value, ApiError> {
    let rows = state.store.outbox_of_asset(asset_id).await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "kind": r.kind,
                "type": r.event_type,
                "created_at": rfc3339(r.created_at),
                "attempts": r.attempts,
                "delivered_at": r.delivered_at.map(rfc3339),
                "failed_at": r.failed_at.map(rfc3339),
                "last_error": r.last_error,
            })
        })
        .collect())
}

async fn variation_view(
    state: &AppState,
    v: &VariationRow,
    detail: bool,
) -> Result<Value, ApiError> {
    let st = v.state();
    let mut out = json!({
        "index": v.idx,
        "id": v.id,
        "state": st,
        "stage": {
            "name": st,
            "progress": v.stage_progress.map(|p| (p * 10.0).round() / 10.0),
            "detail": v.stage_detail,
        },
        "task_uuid": v.task_uuid,
        "cost_usd": v.total_cost(),
    });
    if let Some(p) = v.progress() {
        // The long step's own reading (ffmpeg's): null fields are unknown yet.
        out["progress"] = json!({
            "stage": p.stage,
            "percent": p.percent,
            "fps": p.fps,
            "speed": p.speed,
            "eta_secs": p.eta_secs,
        });
    }
    let earlier = v.previous_tasks();
    if !earlier.is_empty() {
        // A resubmission: the tasks this variation had before, oldest first.
        out["previous_tasks"] = earlier
            .iter()
            .map(|t| json!({"task_uuid": t.task_uuid, "cost_usd": t.cost, "reason_code": t.reason_code, "at": rfc3339(t.at)}))
            .collect();
    }
    if let (Some(code), Some(reason)) = (&v.reason_code, &v.reason) {
        out["reason"] = json!({"code": code, "message": reason});
    }
    if let Some(sha) = &v.master_sha256 {
        let probe: Value = v
            .master_probe
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        out["master"] = json!({
            "key": v.master_key,
            "size": v.master_size,
            "sha256": sha,
            "arrived_at": v.arrived_at.map(rfc3339),
            "width": probe.pointer("/video/width"),
            "height": probe.pointer("/video/height"),
            "duration_secs": probe.get("duration_secs"),
            "video_codec": probe.pointer("/video/codec"),
            "audio_codec": probe.pointer("/audio/codec"),
        });
    }
    if let Some(qc) = v
        .qc_json
        .as_deref()
        .and_then(|q| serde_json::from_str::<QcReport>(q).ok())
    {
        out["qc"] = json!({
            "verdict": qc.verdict,
            "output_quality": qc.output_quality,
            "ssim_floor": qc.ssim_floor,
            "ttl_remaining_secs_at_check": qc.ttl_remaining_secs,
            "renditions": qc.renditions.iter().map(|r| json!({
                "name": r.name,
                "width": r.probe.video.as_ref().map(|v| v.width),
                "height": r.probe.video.as_ref().map(|v| v.height),
                "ssim": (r.ssim * 10000.0).round() / 10000.0,
                "psnr_db": (r.psnr * 100.0).round() / 100.0,
                "duration_secs": r.probe.duration_secs,
                "bit_rate": r.probe.bit_rate,
                "size_bytes": r.size_bytes,
                "moov_first": r.moov_first,
                "vmaf": r.vmaf,
            })).collect::<Vec<_>>(),
            "vmaf_available": qc.vmaf_available,
            "master_loudness": qc.content.as_ref().and_then(|c| c.loudness),
            "loudness_normalization": qc.loudness_normalization,
            "failures": qc.failures().collect::<Vec<_>>(),
            "checks": if detail { serde_json::to_value(&qc.checks)? } else { Value::Null },
        });
    }
    if let Some(m) = v
        .published_json
        .as_deref()
        .and_then(|m| serde_json::from_str::<Manifest>(m).ok())
    {
        out["published"] = json!({
            "manifest_url": m.manifest_url,
            "vast_url": m.vast_url,
            "content_hash": m.content_hash,
            "universal_ad_id": m.universal_ad_id,
            "expires_at": m.expires_at,
            "renditions": m.renditions.iter().map(|r| json!({
                "name": r.name, "url": r.url, "width": r.width, "height": r.height,
                "bitrate_kbps": r.bitrate_kbps, "codecs": r.codecs, "size": r.size,
                "container": if r.container.is_empty() { "mp4" } else { r.container.as_str() },
                "content_type": r.content_type,
            })).collect::<Vec<_>>(),
            "poster_url": m.poster.url,
            "posters": m.posters.iter().map(|p| json!({
                "url": p.url, "width": p.width, "height": p.height, "format": p.format,
            })).collect::<Vec<_>>(),
            "storyboard": m.storyboard.as_ref().map(|s| json!({
                "sprite_url": s.sprite.url, "vtt_url": s.vtt.url,
            })),
            "preview_url": m.preview.as_ref().map(|p| p.url.clone()),
            "hls": m.hls.as_ref().map(|h| json!({
                "master_url": h.master.url,
                "variants": h.variants.iter().map(|v| json!({
                    "name": v.name, "url": v.url, "width": v.width, "height": v.height,
                    "bandwidth": v.bandwidth, "codecs": v.codecs,
                })).collect::<Vec<_>>(),
            })),
            "file_count": m.files.len(),
            "qc_report_url": m.qc_report.url,
        });
    }
    if let Some(p) = v
        .provider_json
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
    {
        out["provider"] = json!({
            "video_uuid": p.get("videoUUID"),
            "video_url": p.get("videoURL"),
            "seed": p.get("seed"),
        });
    }
    if detail {
        let history = state.store.transitions(&v.id).await?;
        out["history"] = history
            .iter()
            .map(|t| json!({"from": t.from_state, "to": t.to_state, "at": rfc3339(t.at), "note": t.note}))
            .collect();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_names_are_safe_path_segments() {
        for ok in ["spring-2027", "a", "brand_x.q3"] {
            assert!(valid_campaign(ok), "{ok}");
        }
        for bad in ["", "..", "a/b", "Spring", "-x", "a..b", &"x".repeat(41)] {
            assert!(!valid_campaign(bad), "{bad}");
        }
    }

    #[test]
    fn aggregate_status_reads_like_the_variations() {
        use JobState::*;
        assert_eq!(aggregate(&[Published, Transcoding]), "processing");
        assert_eq!(aggregate(&[Published, Published]), "published");
        assert_eq!(aggregate(&[Published, Rejected]), "partially_published");
        assert_eq!(aggregate(&[Rejected]), "rejected");
        assert_eq!(aggregate(&[Failed, Rejected]), "failed");
    }
}
