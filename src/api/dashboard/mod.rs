//! The dashboard at `/`: a few static files (HTML, JS, CSS and a pinned copy
//! of hls.js) embedded in the binary. The page holds no data of its own: it
//! signs in with an API key kept in `sessionStorage` and reads and writes
//! through the public API (`/v1/...`), sending the key as a Bearer header, so
//! the key is never in a URL or a cookie. No build step: the files are served
//! as they are committed.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The hls.js release the dashboard plays HLS with, fetched from the npm
/// registry by `scripts/fetch-hls.sh` (which checks this digest).
pub const HLS_VERSION: &str = "1.7.4";
/// SHA-256 of `vendor/hls.light.min.js` as the npm package `hls.js@1.7.4` ships it.
pub const HLS_SHA256: &str = "482cccb3a224554f64d8c2cf0d335dba4a3819bdb726afbfddfe15de4c277d82";
/// Where the page loads hls.js from: the version is in the path, so the file
/// can be cached for good.
pub const HLS_PATH: &str = "/dashboard/hls-1.7.4.light.min.js";

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const PLAYER_JS: &str = include_str!("player.js");
const FORM_JS: &str = include_str!("form.js");
const APP_CSS: &str = include_str!("app.css");
const HLS_JS: &[u8] = include_bytes!("vendor/hls.light.min.js");

/// The page may load scripts and styles only from reelay itself; media,
/// images and fetches may go to the CDN (another origin in production);
/// hls.js runs its demuxer in a `blob:` worker and plays through `blob:` media.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; \
    connect-src 'self' http: https:; worker-src 'self' blob:; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

/// The dashboard's routes. They need no state, and no key: the files are the
/// same for everyone; what they show comes from the API, which checks the key.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page() }))
        .route(
            "/dashboard/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/dashboard/player.js",
            get(|| async { asset("text/javascript; charset=utf-8", PLAYER_JS) }),
        )
        .route(
            "/dashboard/form.js",
            get(|| async { asset("text/javascript; charset=utf-8", FORM_JS) }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(HLS_PATH, get(|| async { hls() }))
}

fn headers(content_type: &'static str, cache: &'static str) -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
    ]
}

fn page() -> Response {
    (headers("text/html; charset=utf-8", "no-cache"), INDEX_HTML).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (headers(content_type, "no-cache"), body).into_response()
}

fn hls() -> Response {
    (
        headers(
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        HLS_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use sha2::{Digest, Sha256};
    use tower::ServiceExt;

    #[test]
    fn the_embedded_hls_js_is_the_pinned_release() {
        assert_eq!(hex::encode(Sha256::digest(HLS_JS)), HLS_SHA256);
        assert!(HLS_PATH.contains(HLS_VERSION));
        assert!(
            std::str::from_utf8(HLS_JS).unwrap().contains(HLS_VERSION),
            "the file names its version"
        );
    }

    #[tokio::test]
    async fn every_script_and_style_the_page_names_is_served() {
        let app = routes::<()>();
        let mut named = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for part in INDEX_HTML.split(attr).skip(1) {
                let url = part.split('"').next().unwrap();
                if url.starts_with('/') {
                    named.push(url.to_string());
                }
            }
        }
        // The page loads hls.js by script when it needs it.
        assert!(APP_JS.contains(HLS_PATH) || PLAYER_JS.contains(HLS_PATH));
        named.push(HLS_PATH.into());
        assert!(named.len() >= 5, "{named:?}");
        for url in named {
            let res = app
                .clone()
                .oneshot(Request::get(&url).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{url}");
            let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap();
            assert!(csp.contains("script-src 'self'"), "{url}: {csp}");
        }
        let res = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }

    #[test]
    fn the_key_is_kept_in_session_storage_and_sent_only_as_a_bearer_header() {
        let js = [APP_JS, PLAYER_JS, FORM_JS].concat();
        assert!(js.contains("sessionStorage"));
        for banned in [
            "localStorage",
            "document.cookie",
            "?key=",
            "&key=",
            "token=",
        ] {
            assert!(!js.contains(banned), "{banned} in the dashboard's scripts");
        }
        assert!(js.contains("'Bearer ' + "));
    }
}
