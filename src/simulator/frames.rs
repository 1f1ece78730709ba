//! `inputs.frameImages` for the simulator: the image bytes behind a data
//! URI, raw base64 or an http(s) URL. A UUID names an image uploaded to
//! Runware earlier, which a stand-in does not have: it is ignored.

use base64::Engine;
use std::time::Duration;

/// Largest frame image the simulator fetches or decodes.
pub const MAX_IMAGE_BYTES: usize = 32 * 1024 * 1024;
/// A frame image URL that has not answered in this long fails the task, so a
/// dead host cannot hold a generation forever.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The image's bytes, `None` for a UUID reference.
pub async fn load(http: &reqwest::Client, image: &str) -> Result<Option<Vec<u8>>, String> {
    let s = image.trim();
    if uuid::Uuid::try_parse(s).is_ok() {
        return Ok(None);
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        return fetch(http, s).await.map(Some);
    }
    let data = match s.strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) = rest
                .split_once(',')
                .ok_or("the data URI has no ',' before its data")?;
            if !meta.ends_with(";base64") {
                return Err("only base64 data URIs are supported".into());
            }
            data
        }
        None => s,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data.trim()))
        .map_err(|e| format!("the image is not valid base64: {e}"))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!("the image is larger than {MAX_IMAGE_BYTES} bytes"));
    }
    Ok(Some(bytes))
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let res = http
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("fetching the image failed: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("fetching the image answered HTTP {}", res.status()));
    }
    if res
        .content_length()
        .is_some_and(|l| l > MAX_IMAGE_BYTES as u64)
    {
        return Err(format!("the image is larger than {MAX_IMAGE_BYTES} bytes"));
    }
    let bytes = res
        .bytes()
        .await
        .map_err(|e| format!("reading the image failed: {e}"))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!("the image is larger than {MAX_IMAGE_BYTES} bytes"));
    }
    Ok(bytes.to_vec())
}

/// The file extension for the image's format, from its magic bytes
/// (ffmpeg's image reader picks its decoder by extension).
pub fn extension(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("gif")
    } else if bytes.starts_with(b"BM") {
        Some("bmp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

    #[tokio::test]
    async fn data_uris_and_raw_base64_decode_and_uuids_are_skipped() {
        let http = reqwest::Client::new();
        let from_uri = load(&http, &format!("data:image/png;base64,{PNG_1X1}"))
            .await
            .unwrap()
            .unwrap();
        let raw = load(&http, PNG_1X1).await.unwrap().unwrap();
        assert_eq!(from_uri, raw);
        assert_eq!(extension(&raw), Some("png"));
        assert_eq!(
            load(&http, "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b")
                .await
                .unwrap(),
            None
        );
        assert!(load(&http, "data:image/png,notbase64").await.is_err());
        assert!(load(&http, "***").await.is_err());
        assert_eq!(extension(b"not an image"), None);
        assert_eq!(extension(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpg"));
    }
}
