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
