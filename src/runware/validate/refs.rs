//! The shapes a media reference may take: UUID, http(s) URL, data URI, base64.

use uuid::Uuid;

pub(super) fn is_uuid(s: &str) -> bool {
    Uuid::try_parse(s).is_ok()
}

pub(super) fn is_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

/// UUID, http(s) URL, `data:image/<type>;base64,<data>` or raw base64.
pub fn is_image_ref(s: &str) -> bool {
    is_uuid(s) || is_http_url(s) || is_image_data_uri(s) || looks_like_base64(s, 16)
}

pub(super) fn is_image_data_uri(s: &str) -> bool {
    const SCHEME: &str = "data:image/";
    let Some(head) = s.get(..SCHEME.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(SCHEME) {
        return false;
    }
    let Some((subtype, payload)) = s[SCHEME.len()..].split_once(";base64,") else {
        return false;
    };
    !subtype.is_empty()
        && subtype
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
        && looks_like_base64(payload, 4)
}

/// Standard base64 alphabet, padded to a multiple of 4, at least `min_len` long.
pub(super) fn looks_like_base64(s: &str, min_len: usize) -> bool {
    let body = s.trim_end_matches('=');
    s.len() >= min_len
        && s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
