//! The request's own VAST fields (`vast` in `POST /v1/assets`): title,
//! advertiser, click-through and click tracking, impression, quartile and
//! player-event tracking, error pixels and ad verifications. Every URL is
//! https; VAST macros (`[ERRORCODE]`, `[CACHEBUSTING]`...) are kept verbatim
//! for the player to fill in.

use super::vast::{cdata, escape};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The tracking events a request may set (VAST 4.x Linear events).
pub const EVENTS: &[&str] = &[
    "start",
    "firstQuartile",
    "midpoint",
    "thirdQuartile",
    "complete",
    "mute",
    "pause",
    "skip",
];

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VastFields {
    #[serde(default)]
    pub ad_title: Option<String>,
    #[serde(default)]
    pub advertiser: Option<String>,
    #[serde(default)]
    pub click_through: Option<String>,
    #[serde(default)]
    pub click_tracking: Vec<String>,
    #[serde(default)]
    pub impression: Vec<String>,
    /// Event name → URLs.
    #[serde(default)]
    pub tracking: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default)]
    pub ad_verifications: Vec<Verification>,
}

/// One `<Verification>`: an OM SDK script and its vendor.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verification {
    pub vendor: String,
    pub javascript_resource: String,
    #[serde(default)]
    pub verification_parameters: Option<String>,
}

pub const HTTPS_RULE: &str =
    "must be an https URL with a host (VAST macros such as [ERRORCODE] are kept as written)";

/// Whether `s` is an https URL; `[MACRO]`s are stood in for while parsing.
fn https(s: &str) -> bool {
    let mut probe = String::with_capacity(s.len());
    let mut in_macro = false;
    for c in s.chars() {
        match c {
            '[' => in_macro = true,
            ']' if in_macro => {
                in_macro = false;
                probe.push('0');
            }
            _ if in_macro => {}
            c => probe.push(c),
        }
    }
    !in_macro
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(&probe)
            .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()))
}

impl VastFields {
    /// Parses `value` (the request's `vast`); every problem as (path, rule).
    pub fn parse(value: &serde_json::Value) -> Result<Self, Vec<(String, String)>> {
        let f: VastFields = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let p = e.path().to_string();
            vec![(
                if p == "." { "vast".into() } else { format!("vast.{p}") },
                format!(
                    "{} (fields: adTitle, advertiser, clickThrough, clickTracking, impression, tracking, error, adVerifications)",
                    e.inner()
                ),
            )]
        })?;
        let mut bad = Vec::new();
        let mut url = |path: String, u: &str| {
            if !https(u) {
                bad.push((path, HTTPS_RULE.to_string()));
            }
        };
        if let Some(u) = &f.click_through {
            url("vast.clickThrough".into(), u);
        }
        for (key, list) in [
            ("clickTracking", &f.click_tracking),
            ("impression", &f.impression),
            ("error", &f.error),
        ] {
            for (i, u) in list.iter().enumerate() {
                url(format!("vast.{key}[{i}]"), u);
            }
        }
        for (event, list) in &f.tracking {
            for (i, u) in list.iter().enumerate() {
                url(format!("vast.tracking.{event}[{i}]"), u);
            }
        }
        for (i, v) in f.ad_verifications.iter().enumerate() {
            url(
                format!("vast.adVerifications[{i}].javascriptResource"),
                &v.javascript_resource,
            );
        }
        for event in f.tracking.keys() {
            if !EVENTS.contains(&event.as_str()) {
                bad.push((
                    format!("vast.tracking.{event}"),
                    format!("unknown event; allowed: {}", EVENTS.join(", ")),
                ));
            }
        }
        for (i, v) in f.ad_verifications.iter().enumerate() {
            if v.vendor.trim().is_empty() {
                bad.push((
                    format!("vast.adVerifications[{i}].vendor"),
                    "is required".into(),
                ));
            }
        }
        for (key, s) in [("adTitle", &f.ad_title), ("advertiser", &f.advertiser)] {
            if s.as_ref()
                .is_some_and(|s| s.trim().is_empty() || s.len() > 256)
            {
                bad.push((format!("vast.{key}"), "must be 1-256 characters".into()));
            }
        }
        if bad.is_empty() {
            Ok(f)
        } else {
            Err(bad)
        }
    }

    /// `<Error>`s, extra `<Impression>`s and `<Advertiser>` (InLine).
    pub fn inline_head(&self) -> String {
        let mut x = String::new();
        for u in &self.error {
            let _ = writeln!(x, "      <Error>{}</Error>", cdata(u));
        }
        for (i, u) in self.impression.iter().enumerate() {
            let _ = writeln!(
                x,
                "      <Impression id=\"request-{i}\">{}</Impression>",
                cdata(u)
            );
        }
        if let Some(a) = &self.advertiser {
            let _ = writeln!(x, "      <Advertiser>{}</Advertiser>", escape(a));
        }
        x
    }

    /// `<AdVerifications>` (InLine, before `Creatives`).
    pub fn verifications(&self) -> String {
        if self.ad_verifications.is_empty() {
            return String::new();
        }
        let mut x = String::from("      <AdVerifications>\n");
        for v in &self.ad_verifications {
            let _ = writeln!(x, "        <Verification vendor=\"{}\">", escape(&v.vendor));
            let _ = writeln!(
                x,
                "          <JavaScriptResource apiFramework=\"omid\" browserOptional=\"true\">{}</JavaScriptResource>",
                cdata(&v.javascript_resource)
            );
            if let Some(p) = &v.verification_parameters {
                let _ = writeln!(
                    x,
                    "          <VerificationParameters>{}</VerificationParameters>",
                    cdata(p)
                );
            }
            x.push_str("        </Verification>\n");
        }
        x.push_str("      </AdVerifications>\n");
        x
    }

    /// `<VideoClicks>` and `<TrackingEvents>` (Linear, after `MediaFiles`).
    pub fn linear_tail(&self) -> String {
        let mut x = String::new();
        if self.click_through.is_some() || !self.click_tracking.is_empty() {
            x.push_str("            <VideoClicks>\n");
            if let Some(u) = &self.click_through {
                let _ = writeln!(
                    x,
                    "              <ClickThrough id=\"request\">{}</ClickThrough>",
                    cdata(u)
                );
            }
            for u in &self.click_tracking {
                let _ = writeln!(
                    x,
                    "              <ClickTracking>{}</ClickTracking>",
                    cdata(u)
                );
            }
            x.push_str("            </VideoClicks>\n");
        }
        if !self.tracking.is_empty() {
            x.push_str("            <TrackingEvents>\n");
            for (event, list) in &self.tracking {
                for u in list {
                    let _ = writeln!(
                        x,
                        "              <Tracking event=\"{}\">{}</Tracking>",
                        escape(event),
                        cdata(u)
                    );
                }
            }
            x.push_str("            </TrackingEvents>\n");
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_must_be_https_and_macros_are_kept_verbatim() {
        let f = VastFields::parse(&json!({
            "adTitle": "Spring",
            "clickThrough": "https://brand.example/land?cb=[CACHEBUSTING]",
            "error": ["https://t.example/e?code=[ERRORCODE]"],
            "tracking": {"midpoint": ["https://t.example/mid"]},
        }))
        .unwrap();
        assert!(f.inline_head().contains("code=[ERRORCODE]"));
        assert!(f.linear_tail().contains("<Tracking event=\"midpoint\">"));
        assert!(f.linear_tail().contains("cb=[CACHEBUSTING]"));
        let e = VastFields::parse(&json!({
            "clickThrough": "http://brand.example/",
            "impression": ["https://ok.example/", "javascript:alert(1)"],
            "tracking": {"rewind": ["https://t.example/"]},
            "adVerifications": [{"vendor": "", "javascriptResource": "https://v.example/omid.js"}],
        }))
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "vast.clickThrough",
                "vast.impression[1]",
                "vast.tracking.rewind",
                "vast.adVerifications[0].vendor"
            ]
        );
        let e = VastFields::parse(&json!({"clickthrough": "https://x.example/"})).unwrap_err();
        assert_eq!(e[0].0, "vast.clickthrough");
        assert!(!https("https://x.example/[ERRORCODE"));
    }
}
