//! `GET`/`HEAD /cdn/{path}`: the embedded CDN origin. Streams objects of the
//! CDN bucket with Range (206), ETag, conditional GET, Content-Type and the
//! Cache-Control stored with each object; a thumbnail not yet cached
//! (`v{n}/thumbnail.jpg?time=&width=`) is rendered by `api::thumbnails`. In production a CDN sits in front
//! of the bucket instead; this handler only reads through `ObjectStore`.

use super::{ApiError, AppState};
use crate::storage::{ObjectKey, StorageError};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

#[utoipa::path(method(get, head), operation_id = "cdn_get", path = "/cdn/{path}", tag = "cdn", security(()), params(("path" = String, Path, description = "Object key under the CDN path"), ("Range" = Option<String>, Header, description = "bytes=start-end"), ("time" = Option<f64>, Query, description = "Only for {campaign}/{asset}/v{n}/thumbnail.{jpg,png,webp}: seconds into the video (default: the middle), as on /v1/assets/{id}/variations/{n}/{file}"), ("width" = Option<u32>, Query, description = "Only for thumbnail.{jpg,png,webp}: pixels, 16 to the widest rendition (default: its width)")), responses((status = 200, description = "The file", body = String, content_type = "application/octet-stream"), (status = 206, description = "Partial content", body = String, content_type = "application/octet-stream"), (status = 400, description = "A thumbnail's time, width or format is invalid, each named", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 416, description = "Range not satisfiable", body = crate::api::openapi::ErrorBody), (status = 429, description = "Thumbnail renders from this IP are rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "cdn.serve", skip_all)]
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(key) = ObjectKey::parse(&path) else {
        return Err(ApiError::NotFound(format!("/cdn/{path}")));
    };
    let bucket = &state.settings.storage.cdn_bucket;
    // Only a well-formed single byte range reaches the store.
    let range = match headers
        .get(header::RANGE)
        .map(|r| parse_range(r.as_bytes()))
    {
        None | Some(Range::Ignored) => None,
        Some(Range::Bytes(r)) => Some(r),
        Some(Range::Malformed(why)) => return Err(unsatisfiable(&state, &key, &path, why).await),
    };
    let obj = match state.objects.get(bucket, &key, range.as_deref()).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            // A still asked by time and width (`v{n}/thumbnail.jpg?time=`).
            let peer = extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|ConnectInfo(p)| p.ip());
            return match super::thumbnails::from_cdn_path(&state, &path, query.as_deref(), peer)
                .await
            {
                Some(Ok(res)) if method == Method::HEAD => {
                    let (parts, _) = res.into_parts();
                    Ok(Response::from_parts(parts, Body::empty()))
                }
                Some(answer) => answer,
                None => Err(ApiError::NotFound(format!("/cdn/{path}"))),
            };
        }
        Err(StorageError::InvalidRange) => {
            return Err(unsatisfiable(&state, &key, &path, "the range starts past the end").await)
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
        (Some(inm), Some(etag)) => if_none_match_hits(inm.as_bytes(), etag),
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

/// Whether an `If-None-Match` value names `etag` (or is `*`): a list of
/// entity tags, weak ones (`W/"…"`) compared weakly (RFC 9110 §13.1.2). A
/// value that is not text names nothing.
pub fn if_none_match_hits(raw: &[u8], etag: &str) -> bool {
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = strip(etag);
    text.split(',').any(|t| {
        let t = t.trim();
        t == "*" || (!t.is_empty() && strip(t) == want)
    })
}

/// A `Range` header as this origin reads it (RFC 9110 §14).
#[derive(Debug, PartialEq, Eq)]
pub enum Range {
    /// One byte range, rewritten canonically (`bytes=0-99`, `bytes=100-`, `bytes=-500`).
    Bytes(String),
    /// Another range unit: the header is ignored and the whole object sent.
    Ignored,
    /// `bytes=` with anything but one well-formed range: 416.
    Malformed(&'static str),
}

/// Reads a `Range` value. Several ranges in one header are refused as well
/// (the store serves one), as is a range whose last byte is before its first.
pub fn parse_range(raw: &[u8]) -> Range {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Range::Malformed("the Range header is not text");
    };
    let Some((unit, spec)) = text.trim().split_once('=') else {
        return Range::Malformed("the Range header must look like bytes=first-last");
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Range::Ignored;
    }
    let spec = spec.trim();
    if spec.contains(',') {
        return Range::Malformed("only one byte range per request is served");
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Malformed("a byte range must look like first-last, first- or -suffix");
    };
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(n) if n > 0 => Range::Bytes(format!("bytes=-{n}")),
            _ => Range::Malformed("a suffix range must be a positive byte count"),
        },
        (first, "") => match number(first) {
            Some(a) => Range::Bytes(format!("bytes={a}-")),
            None => Range::Malformed("a byte position must be a whole number"),
        },
        (first, last) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => Range::Bytes(format!("bytes={a}-{b}")),
            (Some(_), Some(_)) => Range::Malformed("the last byte of a range is before its first"),
            _ => Range::Malformed("a byte position must be a whole number"),
        },
    }
}

/// 416 with the object's size (`Content-Range: bytes */size`), or 404
/// when there is no such object.
async fn unsatisfiable(state: &AppState, key: &ObjectKey, path: &str, why: &str) -> ApiError {
    match state
        .objects
        .head(&state.settings.storage.cdn_bucket, key)
        .await
    {
        Ok(None) => ApiError::NotFound(format!("/cdn/{path}")),
        head => ApiError::RangeNotSatisfiable {
            message: format!("range not satisfiable: {why}"),
            size: head.ok().flatten().map(|m| m.size),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_strictly_and_rewritten_canonically() {
        let ok = |raw: &str, want: &str| {
            assert_eq!(
                parse_range(raw.as_bytes()),
                Range::Bytes(want.into()),
                "{raw}"
            )
        };
        ok("bytes=0-99", "bytes=0-99");
        ok("bytes=100-", "bytes=100-");
        ok("bytes=-500", "bytes=-500");
        ok(" BYTES = 5 - 5 ", "bytes=5-5");
        assert_eq!(parse_range(b"items=0-1"), Range::Ignored);
        for bad in [
            "bytes=abc",
            "bytes=1-2-3",
            "bytes=5-2",
            "bytes=-0",
            "bytes=-",
            "bytes=0-1,4-5",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
            "bytes",
            "",
        ] {
            assert!(
                matches!(parse_range(bad.as_bytes()), Range::Malformed(_)),
                "{bad:?}"
            );
        }
        assert!(matches!(parse_range(b"bytes=\xff-1"), Range::Malformed(_)));
    }
}
