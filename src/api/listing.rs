//! `GET /v1/assets` (cursor pages and filters) and `GET /v1/campaigns/{id}`
//! (counts by state and the summed cost). A page is two queries however
//! many assets it lists; a campaign is one.

use super::{ApiError, ApiKey, AppState, QueryParams};
use crate::domain::CampaignId;
use crate::jobs::model::Variation;
use crate::jobs::store::PageQuery;
use crate::jobs::State;
use crate::views::{aggregate, AssetView};
use axum::extract::{Path, State as Shared};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// A page's size when `limit` is not given, and the largest one.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
const CURSOR_RULE: &str = "must be a next_cursor value from an earlier page of this list";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub campaign: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Assets with at least one variation in this state.
    pub state: Option<String>,
    /// RFC 3339: created at or after.
    pub created_after: Option<String>,
    /// RFC 3339: created strictly before.
    pub created_before: Option<String>,
}

/// One page of assets, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetList {
    pub campaign: Option<String>,
    pub count: usize,
    /// The generation cost of the assets on this page.
    pub cost_usd: f64,
    pub assets: Vec<AssetView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The opaque position after an asset: its creation time and id.
pub fn encode_cursor(created_at: i64, id: &str) -> String {
    B64.encode(format!("v1:{created_at}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(B64.decode(cursor).ok()?).ok()?;
    let rest = text.strip_prefix("v1:")?;
    let (at, id) = rest.split_once(':')?;
    let id = crate::domain::AssetId::parse(id)?;
    Some((at.parse().ok()?, id.as_str().to_string()))
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, crate::runware::FieldError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|e| crate::runware::FieldError {
                    path: name.into(),
                    rule: format!("must be an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"),
                })
        })
        .transpose()
}

#[utoipa::path(get, operation_id = "list_assets", path = "/v1/assets", tag = "assets", params(ListQuery), responses((status = 200, description = "One page, newest first", body = AssetList), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.list", skip_all)]
pub async fn list(
    _key: ApiKey,
    Shared(state): Shared<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<AssetList>, ApiError> {
    let mut errors = Vec::new();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(crate::runware::FieldError {
            path: "limit".into(),
            rule: format!("must be 1 to {MAX_LIMIT}; got {limit}"),
        });
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => decode_cursor(c).or_else(|| {
            errors.push(crate::runware::FieldError {
                path: "cursor".into(),
                rule: CURSOR_RULE.into(),
            });
            None
        }),
    };
    let filter_state = match q.state.as_deref() {
        None => None,
        Some(s) => s.parse::<State>().ok().or_else(|| {
            let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(crate::runware::FieldError {
                path: "state".into(),
                rule: format!("must be one of: {}", names.join(", ")),
            });
            None
        }),
    };
    let created_after =
        time_param("created_after", q.created_after.as_deref()).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
    let created_before =
        time_param("created_before", q.created_before.as_deref()).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
    if !errors.is_empty() {
        return Err(ApiError::Invalid {
            message: "the query string is invalid".into(),
            fields: errors,
        });
    }
    let page = state
        .store
        .page_assets(&PageQuery {
            campaign: q.campaign.clone(),
            state: filter_state,
            created_after,
            created_before,
            after,
            limit,
        })
        .await?;
    // Two queries for the whole page, however many assets it lists.
    let ids: Vec<&str> = page.assets.iter().map(|a| a.id.as_str()).collect();
    let mut rows = state.store.variations_of_many(&ids).await?;
    let out: Vec<AssetView> = page
        .assets
        .iter()
        .map(|a| {
            let vs = rows.remove(&a.id).unwrap_or_default();
            AssetView::new(&state.public_url, a, &vs, None)
        })
        .collect();
    let total_cost: f64 = out.iter().map(|v| v.cost_usd).sum();
    Ok(Json(AssetList {
        campaign: q.campaign,
        count: out.len(),
        cost_usd: round_cents(total_cost),
        assets: out,
        next_cursor: page.next.map(|(at, id)| encode_cursor(at, &id)),
    }))
}

/// A campaign: how many assets and variations, by state, and what they cost.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub assets: usize,
    pub variations: usize,
    /// Variations by state (every state, zeros included).
    pub variations_by_state: BTreeMap<&'static str, usize>,
    /// Assets by overall status (`processing`, `published`, ...).
    pub assets_by_status: BTreeMap<&'static str, usize>,
    /// Every generation's cost, resubmitted tasks included.
    pub cost_usd: f64,
    /// `GET /v1/assets?campaign=` lists them.
    pub assets_url: String,
}

#[utoipa::path(get, operation_id = "get_campaign", path = "/v1/campaigns/{id}", tag = "campaigns", params(("id" = String, Path, description = "Campaign id")), responses((status = 200, description = "Counts by state and summed cost", body = CampaignView), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "campaigns.show", skip_all)]
pub async fn campaign(
    _key: ApiKey,
    Shared(state): Shared<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let Ok(campaign) = CampaignId::parse(&id) else {
        return Err(ApiError::NotFound(format!("campaign {id}")));
    };
    let campaign = campaign.into_string();
    let rows = state.store.variations_of_campaign(&campaign).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!("campaign {campaign}")));
    }
    Ok(Json(campaign_view(&state.public_url, &campaign, &rows)))
}

/// The counts and cost of a campaign's variations (ordered by asset).
pub fn campaign_view(public_url: &str, campaign: &str, rows: &[Variation]) -> CampaignView {
    let mut by_state: BTreeMap<&'static str, usize> =
        State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_asset: BTreeMap<&str, Vec<State>> = BTreeMap::new();
    let mut cost = 0.0;
    for v in rows {
        *by_state.entry(v.state.as_str()).or_default() += 1;
        by_asset
            .entry(v.asset_id.as_str())
            .or_default()
            .push(v.state);
        cost += v.total_cost().unwrap_or(0.0);
    }
    let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
    for states in by_asset.values() {
        *by_status.entry(aggregate(states)).or_default() += 1;
    }
    CampaignView {
        id: campaign.to_string(),
        assets: by_asset.len(),
        variations: rows.len(),
        variations_by_state: by_state,
        assets_by_status: by_status,
        cost_usd: round_cents(cost),
        assets_url: format!(
            "{}/v1/assets?campaign={campaign}",
            public_url.trim_end_matches('/')
        ),
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let id = crate::domain::AssetId::generate().to_string();
        let c = encode_cursor(1_700_000_000_123, &id);
        assert_eq!(decode_cursor(&c), Some((1_700_000_000_123, id.clone())));
        for bad in [
            "",
            "abc",
            "!!!",
            &B64.encode("v1:x:y"),
            &B64.encode(format!("v2:1:{id}")),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
