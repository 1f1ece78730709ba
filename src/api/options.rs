//! `GET /v1/options`: what a request may name here, so a client (the
//! dashboard's form, or a script) can offer the choices instead of guessing:
//! the configured delivery profiles with their outputs, the destinations
//! (buyers' specs) with their rules, and the model's
//! sizes, durations and output formats.

use super::{ApiKey, AppState};
use crate::destinations::Destination;
use crate::media::profile::OutputKind;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

/// What a request may name on this server.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OptionsView {
    pub profiles: Vec<ProfileOption>,
    /// The buyers' specs a request may name in `destinations`.
    pub destinations: Vec<DestinationOption>,
    pub model: ModelOption,
    /// The ttl an asset gets when its request names none.
    pub default_ttl_secs: u64,
}

/// A configured delivery profile.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileOption {
    pub name: String,
    pub description: String,
    pub outputs: Vec<OutputOption>,
    /// The delivered loudness (LUFS), when the profile normalises.
    pub loudness_target_lufs: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OutputOption {
    pub name: String,
    pub kind: OutputKind,
}

/// A configured destination with its rules as configured (snake_case keys,
/// as in config).
#[derive(Serialize, utoipa::ToSchema)]
pub struct DestinationOption {
    pub name: String,
    pub description: String,
    /// Where the numbers come from (the buyer's published spec).
    pub source: String,
    pub rules: Destination,
}

/// The generator model's limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelOption {
    /// Runware's model id (AIR).
    pub air: String,
    /// Accepted `width`x`height` pairs.
    pub sizes: Vec<String>,
    pub min_duration: u32,
    pub max_duration: u32,
    pub max_number_results: u32,
    pub output_formats: Vec<String>,
    pub output_quality: QualityRange,
    pub min_ttl_secs: i64,
    pub price_per_second_usd: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QualityRange {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

#[tracing::instrument(name = "options.show", skip_all)]
#[utoipa::path(get, operation_id = "get_options", path = "/v1/options", tag = "meta", responses((status = 200, description = "Profiles, destinations and model limits", body = OptionsView), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
pub async fn show(_key: ApiKey, State(state): State<AppState>) -> Json<OptionsView> {
    let profiles = state
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
            ProfileOption {
                name: name.clone(),
                description: p.description.clone(),
                outputs: outputs
                    .iter()
                    .map(|o| OutputOption {
                        name: o.name.clone(),
                        kind: o.kind,
                    })
                    .collect(),
                loudness_target_lufs: p.loudness_target_lufs,
            }
        })
        .collect();
    let destinations = state
        .settings
        .destinations
        .iter()
        .map(|(name, d)| DestinationOption {
            name: name.clone(),
            description: d.description.clone(),
            source: d.source.clone(),
            rules: d.clone(),
        })
        .collect();
    let m = &state.model;
    Json(OptionsView {
        profiles,
        destinations,
        model: ModelOption {
            air: m.air.clone(),
            sizes: m.sizes.clone(),
            min_duration: m.min_duration,
            max_duration: m.max_duration,
            max_number_results: 4,
            output_formats: ["MP4", "WEBM", "MOV"].map(String::from).to_vec(),
            output_quality: QualityRange {
                min: 20,
                max: 99,
                default: 95,
            },
            min_ttl_secs: 60,
            price_per_second_usd: m.price_per_second,
        },
        default_ttl_secs: state.settings.policy.default_ttl_secs,
    })
}
