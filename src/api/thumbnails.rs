//! `GET /v1/assets/{id}/variations/{n}/thumbnail.{jpg,png,webp}?time=&width=`:
//! a still at any time and width, as Mux's image API makes them. Rendered
//! from the variation's best published rendition (the largest progressive
//! MP4, else the largest) with one seek and one frame (`media::thumbnail`),
//! and cached in the CDN bucket inside the published set's folder, keyed by
//! its parameters (`{set}/thumbnails/{ms}ms_{width}w.{ext}`): a second ask
//! is a read, the cached file is also served at that CDN path, and it goes
//! with its set (expiry, cancel, the replaced-set sweep). Renders are
//! charged to the API key at `RENDERS_PER_SEC` (burst `RENDER_BURST`);
//! cached answers are not.

use super::{hash_key, ApiError, ApiKey, AppState, QueryParams};
use crate::domain::AssetId;
use crate::media::process::Runner;
use crate::media::thumbnail::{render, ThumbFormat};
use crate::publish::{Layout, Manifest, PublishedRendition};
use crate::runware::FieldError;
use crate::storage::ObjectKey;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

/// The narrowest thumbnail.
pub const MIN_WIDTH: u32 = 16;
/// Renders per second per API key, and the burst above it.
pub const RENDERS_PER_SEC: f64 = 2.0;
pub const RENDER_BURST: u32 = 20;

/// What the handler keeps between requests: the ffmpeg runner (its own
/// slots) and the render budget per API key.
pub struct Thumbnails {
    pub runner: Runner,
    pub limiter: Option<super::limits::RateLimiter<[u8; 32]>>,
}

impl Thumbnails {
    pub fn new(media: &crate::media::MediaConfig) -> Arc<Self> {
        Arc::new(Self {
            runner: Runner::new(media),
            limiter: super::limits::RateLimiter::new(RENDERS_PER_SEC, RENDER_BURST),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThumbQuery {
    /// Seconds into the video (default: the middle).
    pub time: Option<f64>,
    /// Pixels (default: the rendition's width).
    pub width: Option<u32>,
}

/// The best rendition to take a still from: the largest progressive MP4,
/// else the largest of any kind.
pub fn best_rendition(m: &Manifest) -> Option<&PublishedRendition> {
    let area = |r: &&PublishedRendition| u64::from(r.width) * u64::from(r.height);
    m.renditions
        .iter()
        .filter(|r| r.container.is_empty() || r.container == "mp4")
        .max_by_key(area)
        .or_else(|| m.renditions.iter().max_by_key(area))
}

fn invalid(path: &str, rule: String) -> ApiError {
    ApiError::Invalid {
        message: "the thumbnail request is invalid".into(),
        fields: vec![FieldError {
            path: path.into(),
            rule,
        }],
    }
}

#[utoipa::path(get, operation_id = "get_thumbnail", path = "/v1/assets/{id}/variations/{n}/{file}", tag = "assets", params(("id" = String, Path, description = "Asset id (ast_...)"), ("n" = u32, Path, description = "Variation index"), ("file" = String, Path, description = "thumbnail.jpg, thumbnail.png or thumbnail.webp"), ThumbQuery), responses((status = 200, description = "The still", body = String, content_type = "image/jpeg"), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 409, description = "The state does not allow it, or the Idempotency-Key is in use", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "assets.thumbnail", skip_all)]
pub async fn thumbnail(
    _key: ApiKey,
    State(state): State<AppState>,
    Path((id, n, file)): Path<(String, String, String)>,
    QueryParams(q): QueryParams<ThumbQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let format = match file.strip_prefix("thumbnail.") {
        Some(ext) => parse_format(ext)?,
        None => return Err(ApiError::NotFound(format!("route {file}"))),
    };
    let asset = match AssetId::parse(&id) {
        Some(a) => state.store.asset(a.as_str()).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::NotFound(format!("asset {id}")))?;
    let idx: i64 = n
        .parse()
        .map_err(|_| ApiError::NotFound(format!("variation {n} of asset {id}")))?;
    let v = variation(&state, &asset.id, idx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("variation {n} of asset {id}")))?;
    let Some(m) = v.published.as_ref() else {
        return Err(ApiError::Conflict(format!(
            "variation {idx} has no published set to take a thumbnail from"
        )));
    };
    let payer = bearer_of(&headers).map(|k| Payer {
        key: hash_key(&k),
        scope: "API key (thumbnail renders)",
    });
    let (body, cache, cdn_url) = still(&state, m, format, &q, payer).await?;
    let mut res = answer(body, format, cache, "private, max-age=300");
    if let Ok(v) = HeaderValue::from_str(&cdn_url) {
        res.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(res)
}

/// `thumbnail.{ext}` names a format reelay renders, or 400 naming `format`.
fn parse_format(ext: &str) -> Result<ThumbFormat, ApiError> {
    ThumbFormat::parse(ext).ok_or_else(|| {
        invalid(
            "format",
            format!(
                "must be one of {} (thumbnail.jpg ...); got {ext:?}",
                ThumbFormat::NAMES
            ),
        )
    })
}

/// Whom a render is charged to, and how a 429 names it.
struct Payer {
    key: [u8; 32],
    scope: &'static str,
}

async fn variation(
    state: &AppState,
    asset_id: &str,
    idx: i64,
) -> Result<Option<crate::jobs::model::Variation>, ApiError> {
    Ok(state
        .store
        .variations_of(asset_id)
        .await?
        .into_iter()
        .find(|v| v.idx == idx))
}

/// The still of a published set at `q`'s time and width: the cached file
/// when there is one, else a render (charged to `payer` when it is known)
/// that is cached. Returns the bytes, `hit` or `miss`, and the cached
/// file's CDN URL.
async fn still(
    state: &AppState,
    m: &Manifest,
    format: ThumbFormat,
    q: &ThumbQuery,
    payer: Option<Payer>,
) -> Result<(Body, &'static str, String), ApiError> {
    let idx = m.variation;
    let Some(r) = best_rendition(m) else {
        return Err(ApiError::Conflict(format!(
            "variation {idx} has no published rendition"
        )));
    };
    let duration = m.duration_secs;
    let time = q.time.unwrap_or(duration / 2.0);
    if !(time.is_finite() && time >= 0.0 && time < duration) {
        return Err(invalid(
            "time",
            format!("must be at least 0 and below the duration, {duration:.3} s; got {time}"),
        ));
    }
    let width = q.width.unwrap_or(r.width);
    if width < MIN_WIDTH || width > r.width {
        return Err(invalid(
            "width",
            format!(
                "must be {MIN_WIDTH} to {} (the widest rendition; no upscaling); got {width}",
                r.width
            ),
        ));
    }
    let ms = (time * 1000.0).round() as i64;
    let layout = Layout::new(
        &state.settings.cdn.prefix,
        &m.campaign,
        &m.asset_id,
        m.variation,
    );
    let key = layout.file(
        &m.content_hash,
        &format!("thumbnails/{ms}ms_{width}w.{}", format.extension()),
    );
    let key = ObjectKey::parse(&key).map_err(|e| anyhow::anyhow!("thumbnail key: {e}"))?;
    let bucket = &state.settings.storage.cdn_bucket;
    let cdn_url =
        crate::publish::public_url(&state.settings.cdn_base(&state.public_url), key.as_str());

    if let Some(obj) = state.objects.get(bucket, &key, None).await? {
        return Ok((Body::from_stream(obj.body), "hit", cdn_url));
    }
    // A render: charged to whoever asked.
    if let (Some(l), Some(payer)) = (&state.thumbnails.limiter, payer) {
        l.check(&payer.key, Instant::now())
            .map_err(|wait| ApiError::RateLimited {
                scope: payer.scope,
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })?;
    }
    let dir = tempfile::Builder::new()
        .prefix("thumb-")
        .tempdir_in(work_root(state).await?)?;
    let input = dir.path().join("rendition.mp4");
    let src = ObjectKey::parse(&r.key).map_err(|e| anyhow::anyhow!("rendition key: {e}"))?;
    state.objects.download_to_file(bucket, &src, &input).await?;
    let out = dir.path().join(format!("thumb.{}", format.extension()));
    let bytes = render(&state.thumbnails.runner, &input, &out, time, width, format).await?;
    state
        .objects
        .put_bytes(
            bucket,
            &key,
            bytes.clone(),
            format.content_type(),
            crate::publish::IMMUTABLE,
        )
        .await?;
    tracing::info!(asset = %m.asset_id, variation = idx, ms, width, format = format.extension(), "thumbnail rendered");
    Ok((Body::from(bytes), "miss", cdn_url))
}

/// The same still asked under the CDN path, as Mux's image host takes
/// it: `GET /cdn/{cdn.prefix}/{campaign}/{asset}/v{n}/thumbnail.{ext}?time=&width=`
/// (the embedded origin's answer when no such object is stored). No key:
/// renders are charged to the client's IP at the same rate, and the
/// answer may be cached publicly for as long as a pointer (it names the
/// live set, which a reprocess replaces). `None` when `path` is no such
/// name, so the origin answers 404 as for any missing object.
pub async fn from_cdn_path(
    state: &AppState,
    path: &str,
    query: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Option<Result<Response, ApiError>> {
    let prefix = state.settings.cdn.prefix.trim_matches('/');
    let rest = if prefix.is_empty() {
        path
    } else {
        path.strip_prefix(prefix)?.strip_prefix('/')?
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [campaign, id, v, file] = parts[..] else {
        return None;
    };
    let ext = file.strip_prefix("thumbnail.")?;
    let idx: i64 = v.strip_prefix('v')?.parse().ok()?;
    let id = AssetId::parse(id)?;
    Some(cdn_still(state, campaign, id.as_str(), idx, ext, query, peer).await)
}

async fn cdn_still(
    state: &AppState,
    campaign: &str,
    id: &str,
    idx: i64,
    ext: &str,
    query: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Result<Response, ApiError> {
    let format = parse_format(ext)?;
    let q: ThumbQuery = super::parse_query(query.unwrap_or(""))?;
    let gone = || ApiError::NotFound(format!("thumbnail of {id} v{idx}"));
    let m = match state.store.asset(id).await? {
        Some(a) if a.campaign == campaign => variation(state, &a.id, idx).await?,
        _ => None,
    }
    .and_then(|v| v.published)
    .ok_or_else(gone)?;
    let payer = peer.map(|ip| Payer {
        key: hash_key(&format!("ip {ip}")),
        scope: "client IP (thumbnail renders)",
    });
    let (body, cache, _) = still(state, &m, format, &q, payer).await?;
    let remaining = chrono::DateTime::parse_from_rfc3339(&m.expires_at)
        .map(|t| t.timestamp_millis() - crate::time::now_ms())
        .unwrap_or(0)
        / 1000;
    let cache_control =
        crate::publish::pointer_cache_control(state.settings.cdn.manifest_max_age_secs, remaining);
    Ok(answer(body, format, cache, &cache_control))
}

fn bearer_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|k| k.trim().to_string())
}

async fn work_root(state: &AppState) -> Result<std::path::PathBuf, ApiError> {
    let dir = state.settings.data.dir.join("work");
    tokio::fs::create_dir_all(&dir).await?;
    Ok(dir)
}

fn answer(body: Body, format: ThumbFormat, cache: &'static str, cache_control: &str) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // The URL is not content-addressed (a reprocess makes a new set).
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert("x-reelay-cache", HeaderValue::from_static(cache));
    res
}
