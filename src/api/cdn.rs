//! `GET`/`HEAD /cdn/{path}`: the embedded CDN origin. Streams objects of the
//! CDN bucket with Range (206), ETag, conditional GET, Content-Type and the
//! Cache-Control stored with each object. In production a CDN sits in front
//! of the bucket instead; this handler only reads through `ObjectStore`.

use super::{ApiError, AppState};
use crate::storage::{ObjectKey, StorageError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(key) = ObjectKey::parse(&path) else {
        return Err(ApiError::NotFound(format!("/cdn/{path}")));
    };
    let range = headers.get(header::RANGE).and_then(|r| r.to_str().ok());
    let obj = match state
        .objects
        .get(&state.settings.storage.cdn_bucket, &key, range)
        .await
    {
        Ok(Some(o)) => o,
        Ok(None) => return Err(ApiError::NotFound(format!("/cdn/{path}"))),
        Err(StorageError::InvalidRange) => {
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable").into_response())
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            out.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, obj.content_type.clone());
    put(header::CACHE_CONTROL, obj.cache_control.clone());
    put(header::ETAG, obj.etag.clone());
    put(header::CONTENT_RANGE, obj.content_range.clone());
    put(header::CONTENT_LENGTH, Some(obj.content_length.to_string()));
    put(
        header::LAST_MODIFIED,
        obj.last_modified
            .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
    );
    put(header::ACCEPT_RANGES, Some("bytes".into()));

    let not_modified = match (headers.get(header::IF_NONE_MATCH), &obj.etag) {
        (Some(inm), Some(etag)) => inm
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")),
        _ => false,
    };
    let status = if not_modified {
        StatusCode::NOT_MODIFIED
    } else if obj.content_range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    if not_modified || method == Method::HEAD {
        if not_modified {
            out.remove(header::CONTENT_LENGTH);
        }
        return Ok((status, out).into_response());
    }
    Ok((status, out, Body::from_stream(obj.body)).into_response())
}

/// CORS for `/cdn/`: what a player on another origin needs to stream a set
/// (hls.js fetches playlists and segments with Range, `<video crossorigin>`,
/// fetches of `manifest.json`, `vast.xml` and WebVTT), and nothing that
/// writes. Preflights are answered here, before the method routing.
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_RANGE,
        ])
        .expose_headers([
            header::ACCEPT_RANGES,
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ETAG,
        ])
        .max_age(std::time::Duration::from_secs(86_400))
}
