//! `GET /v1/options`: what a request may name here, so a client (the
//! dashboard's form, or a script) can offer the choices instead of guessing:
//! the configured delivery profiles with their outputs, the destinations
//! (buyers' specs) with their rules, and the model's
//! sizes, durations and output formats.

use super::{ApiKey, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

#[tracing::instrument(name = "options.show", skip_all)]
#[utoipa::path(get, operation_id = "get_options", path = "/v1/options", tag = "meta", responses((status = 200, description = "Profiles, states and model limits", body = Object), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
pub async fn show(_key: ApiKey, State(state): State<AppState>) -> Json<Value> {
    let profiles: Vec<Value> = state
        .settings
        .profiles
        .iter()
        .map(|(name, p)| {
            // A profile without outputs gets the default ladder.
            let outputs = if p.outputs.is_empty() {
                crate::media::profile::default_outputs()
            } else {
                p.outputs.clone()
            };
            json!({
                "name": name,
                "description": p.description,
                "outputs": outputs.iter().map(|o| json!({"name": o.name, "kind": o.kind})).collect::<Vec<_>>(),
                "loudness_target_lufs": p.loudness_target_lufs,
            })
        })
        .collect();
    // The buyers' specs a request may name in `destinations`, each with
    // its rules as configured (snake_case keys, as in config).
    let destinations: Vec<Value> = state
        .settings
        .destinations
        .iter()
        .map(|(name, d)| json!({"name": name, "description": d.description, "source": d.source, "rules": d}))
        .collect();
    let m = &state.model;
    Json(json!({
        "profiles": profiles,
        "destinations": destinations,
        "model": {
            "air": m.air,
            "sizes": m.sizes,
            "min_duration": m.min_duration,
            "max_duration": m.max_duration,
            "max_number_results": 4,
            "output_formats": ["MP4", "WEBM", "MOV"],
            "output_quality": {"min": 20, "max": 99, "default": 95},
            "min_ttl_secs": 60,
            "price_per_second_usd": m.price_per_second,
        },
        "default_ttl_secs": state.settings.policy.default_ttl_secs,
    }))
}
