//! serde's decoding errors turned into field paths and rules a user can act on.

use super::rules::RESERVED;
use super::{join, FieldError};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(super) fn parse_at<T: DeserializeOwned>(
    value: &Value,
    prefix: &str,
) -> Result<T, Vec<FieldError>> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let rel = if path == "." { String::new() } else { path };
        let (rel, rule) = describe(rel, &e.inner().to_string());
        vec![FieldError {
            path: join(prefix, &rel),
            rule,
        }]
    })
}

/// Turns serde's message into a rule sentence; fixes the path of a missing
/// field (serde reports it on the parent object).
fn describe(rel: String, msg: &str) -> (String, String) {
    if let Some(field) = between(msg, "missing field `", "`") {
        return (join(&rel, field), "is required".to_string());
    }
    if let Some(field) = between(msg, "unknown field `", "`") {
        let at_root = rel == field;
        if at_root && RESERVED.contains(&field) {
            return (rel, "is set by reelay and must not be given".to_string());
        }
        let rule = match msg.split_once(", expected ") {
            Some((_, expected)) => {
                format!("is not a known field (expected {})", strip_ticks(expected))
            }
            None => "is not a known field".to_string(),
        };
        return (rel, rule);
    }
    if let Some(variant) = between(msg, "unknown variant `", "`") {
        let expected = msg.split_once(", expected ").map_or("", |(_, e)| e);
        return (
            rel,
            format!("must be {} (got \"{variant}\")", strip_ticks(expected)),
        );
    }
    for head in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(head) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                return (
                    rel,
                    format!("must be {} (got {got})", plain_expected(expected)),
                );
            }
        }
    }
    (rel, msg.to_string())
}

fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" => "a non-negative whole number".to_string(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "an object".to_string(),
        e if e.starts_with("struct ") => "an object".to_string(),
        e => e.to_string(),
    }
}

fn between<'m>(msg: &'m str, open: &str, close: &str) -> Option<&'m str> {
    let rest = &msg[msg.find(open)? + open.len()..];
    Some(&rest[..rest.find(close)?])
}

fn strip_ticks(s: &str) -> String {
    s.replace('`', "")
}
