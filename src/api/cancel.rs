//! `DELETE /v1/assets/{id}`: cancels an asset. Variations not finished end
//! `cancelled` (one not yet submitted is never submitted; a running step
//! is fenced out and its ffmpeg killed when its lease renewal fails), what
//! was published is taken down (pointers first, then files), and an
//! `asset.cancelled` callback goes out per variation through the outbox.
//! A generation already running still has its cost recorded when the
//! provider reports it. Cancelling again changes nothing and answers the
//! same view.

use super::{ApiError, ApiKey, AppState};
use crate::domain::AssetId;
use crate::stages::expire::Expiry;
use crate::views::{AssetDetail, AssetView};
use axum::extract::{Path, State};
use axum::Json;

/// The reason every cancelled variation carries.
pub const CANCELLED_NOTE: &str = "the asset was cancelled through the API";

#[utoipa::path(delete, operation_id = "cancel_asset", path = "/v1/assets/{id}", tag = "assets", params(("id" = String, Path, description = "Asset id (ast_...)")), responses((status = 200, description = "Cancelled (a second cancel is a no-op)", body = crate::views::AssetView), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.cancel", skip_all)]
pub async fn cancel(
    _key: ApiKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AssetView>, ApiError> {
    let asset = match AssetId::parse(&id) {
        Some(id) => state.store.asset(id.as_str()).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::NotFound(format!("asset {id}")))?;
    let fresh = state.store.cancel(&asset.id, CANCELLED_NOTE).await?;
    let rows = state.store.variations_of(&asset.id).await?;
    let cdn_base = state.settings.cdn_base(&state.public_url);
    let expiry = Expiry {
        store: &state.store,
        objects: &state.objects,
        settings: &state.settings,
        cdn_base: &cdn_base,
    };
    let unpublished = crate::stages::cancel::unpublish(&expiry, &asset, &rows, &fresh).await?;
    let work = state.settings.data.dir.join("work");
    for v in &fresh {
        crate::jobs::workdir::remove(&work, v).await;
    }
    if !fresh.is_empty() {
        tracing::info!(asset = %asset.id, variations = fresh.len(), unpublished, "asset cancelled");
    }
    let rows = state.store.variations_of(&asset.id).await?;
    let detail = AssetDetail {
        history: state.store.transitions_of_asset(&asset.id).await?,
        notifications: state.store.outbox_of_asset(&asset.id).await?,
    };
    Ok(Json(AssetView::new(
        &state.public_url,
        &asset,
        &rows,
        Some(detail),
    )))
}
