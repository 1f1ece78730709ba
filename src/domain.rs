//! Values taken from outside (request bodies, URL paths, object keys and
//! metadata), each with one fallible `parse`: handlers and the event intake
//! turn raw text into these first, so the rest of reelay never re-checks.

use serde::Serialize;
use std::fmt;
use uuid::Uuid;

pub mod master_key;

/// A campaign name: one safe path segment of object keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CampaignId(String);

impl CampaignId {
    /// The rule, as a 4xx names it.
    pub const RULE: &'static str =
        "must be 1-40 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit";

    pub fn parse(c: &str) -> Result<Self, &'static str> {
        let ok = !c.is_empty()
            && c.len() <= 40
            && c.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
            && !c.contains("..");
        if ok {
            Ok(CampaignId(c.to_string()))
        } else {
            Err(Self::RULE)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An asset id: `ast_` and 20 lowercase hex digits (80 random bits are
/// plenty, and short ids keep object keys short).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AssetId(String);

impl AssetId {
    pub fn generate() -> Self {
        AssetId(format!(
            "ast_{}",
            &Uuid::new_v4().simple().to_string()[..20]
        ))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("ast_")?;
        (hex.len() == 20 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| AssetId(s.to_string()))
    }

    /// Variation `index` of this asset.
    pub fn variation(&self, index: i64) -> VariationId {
        VariationId(format!("{}_v{index}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A variation id: its asset's id, `_v` and its index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VariationId(String);

impl VariationId {
    pub fn parse(s: &str) -> Option<Self> {
        let (asset, index) = s.rsplit_once("_v")?;
        AssetId::parse(asset)?;
        (!index.is_empty() && index.len() <= 4 && index.bytes().all(|b| b.is_ascii_digit()))
            .then(|| VariationId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL reelay will call back: absolute http or https with a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    pub const RULE: &'static str =
        "must be an absolute http or https URL with a host and without user info";
    /// An IP literal the outbound guard refuses (checked by the API, which
    /// knows the allowed networks).
    pub const PUBLIC_RULE: &'static str = "must not name a loopback, private, link-local or other non-public address (outbound.allowed_private_networks lists the allowed ones)";

    pub fn parse(u: &str) -> Result<Self, &'static str> {
        let ok = url::Url::parse(u).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty() && h != ".")
                && u.username().is_empty()
                && u.password().is_none()
        });
        if ok {
            Ok(CallbackUrl(u.to_string()))
        } else {
            Err(Self::RULE)
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_names_are_safe_path_segments() {
        for ok in ["spring-2027", "a", "brand_x.q3"] {
            assert!(CampaignId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", "a/b", "Spring", "-x", "a..b", &"x".repeat(41)] {
            assert_eq!(CampaignId::parse(bad), Err(CampaignId::RULE), "{bad}");
        }
    }

    #[test]
    fn ids_are_what_reelay_makes_and_nothing_else() {
        let a = AssetId::generate();
        assert_eq!(AssetId::parse(a.as_str()), Some(a.clone()));
        let v = a.variation(3);
        assert_eq!(VariationId::parse(v.as_str()), Some(v));
        for bad in [
            "ast_nope",
            "ast_",
            "x",
            "ast_0123456789ABCDEF0123",
            "../ast_x",
        ] {
            assert_eq!(AssetId::parse(bad), None, "{bad}");
        }
        for bad in [
            format!("{a}_v"),
            format!("{a}_vx"),
            format!("{a}v1"),
            "ast_nope_v0".into(),
        ] {
            assert_eq!(VariationId::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn callbacks_go_to_http_urls_only() {
        assert!(CallbackUrl::parse("https://ops.example/hook").is_ok());
        for bad in [
            "ftp://x/y",
            "/relative",
            "https://",
            "not a url",
            "http://user:pw@ops.example/hook",
            "http://user@ops.example/hook",
            "http://:pw@ops.example/hook",
        ] {
            assert!(CallbackUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
