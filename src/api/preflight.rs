//! `POST /v1/assets/preflight`: the body of `POST /v1/assets`, checked the
//! same way, answered with the plan (per destination the outputs it needs
//! and the rules that will be checked, and the union of outputs). Nothing
//! is created, submitted or paid.

use super::{ApiError, ApiKey, AppState, JsonBody};
use crate::destinations::preflight::{self as check, Plan};
use crate::runware::{FieldError, GenerationRequest};
use axum::extract::State;
use axum::Json;
use serde_json::Value;

#[utoipa::path(post, operation_id = "preflight_asset", path = "/v1/assets/preflight", tag = "assets", request_body = crate::api::openapi::CreateAssetRequest, responses((status = 200, description = "The plan: per destination the outputs it needs and the rules checked, and their union; nothing is created or paid", body = crate::destinations::preflight::Plan), (status = 400, description = "Invalid fields, or a destination's rule the request can never meet, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.preflight", skip_all)]
pub async fn preflight(
    _key: ApiKey,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(
        super::assets::validate_fetching(&state, body).await?.plan,
    ))
}

/// The request's `destinations`: configured names, each once. Problems go
/// to `errors`, each naming `destinations[i]`.
pub(super) fn names(
    state: &AppState,
    value: Option<&Value>,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let configured = &state.settings.destinations;
    let known = || {
        let k: Vec<&str> = configured.keys().map(String::as_str).collect();
        format!(
            "must be one of the configured destinations: {}",
            k.join(", ")
        )
    };
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(FieldError {
                path: "destinations".into(),
                rule: format!("must be an array of destination names ({})", known()),
            });
            return Vec::new();
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("destinations[{i}]");
        match item.as_str() {
            Some(n) if out.iter().any(|o| o == n) => errors.push(FieldError {
                path,
                rule: format!("{n:?} is named twice"),
            }),
            Some(n) if configured.contains_key(n) => out.push(n.to_string()),
            _ => errors.push(FieldError {
                path,
                rule: known(),
            }),
        }
    }
    out
}

/// Every destination's check; all refusals at once, or the plan.
pub(super) fn plan(
    state: &AppState,
    names: &[String],
    req: &GenerationRequest,
) -> Result<Plan, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut plans = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let d = &state.settings.destinations[name];
        match check::check(i, name, d, req, &state.model) {
            Ok(p) => plans.push(p),
            Err(e) => errors.extend(e),
        }
    }
    // One frame rate for the whole set: the one nearest the model's that
    // every destination takes, or a refusal naming each one's rates.
    let dests: Vec<(&str, &crate::destinations::Destination)> = names
        .iter()
        .map(|n| (n.as_str(), &state.settings.destinations[n]))
        .collect();
    let fps = f64::from(state.model.fps);
    match crate::destinations::heal::shared_rate(&dests, fps) {
        Err(why) => errors.push(FieldError {
            path: "destinations".into(),
            rule: why,
        }),
        Ok(Some(rate)) => {
            let needs = format!(
                "a frame-rate conform to {rate} fps: the model renders {fps} fps, and {rate} is the rate nearest it that every destination of the request takes"
            );
            for r in plans.iter_mut().flat_map(|p| p.rules.iter_mut()) {
                if r.rule == "frame_rates" && r.needs.is_some() {
                    r.needs = Some(needs.clone());
                }
            }
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let cost = req
        .effective_duration()
        .map(|d| state.model.estimate_cost(d, req.effective_number_results()))
        .unwrap_or(0.0);
    Ok(Plan {
        outputs: check::union(&plans),
        destinations: plans,
        estimated_cost_usd: (cost * 10_000.0).round() / 10_000.0,
    })
}
