//! serde's decoding errors turned into field paths and rules a user can act on.

use super::rules::RESERVED;
use super::{join, FieldError};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// At most this many decoding errors are listed for one value.
const MAX_ERRORS: usize = 50;

/// Decodes `value`, listing every field serde refuses (and every string
/// with a control character) rather than the first. serde stops at the
/// first error, so each offending value is taken out of a working copy and
/// the decoding tried again, until it succeeds or nothing more can go.
/// Paths are always the client's: indices after a removed list element are
/// counted as sent.
pub(super) fn parse_at<T: DeserializeOwned>(
    value: &Value,
    prefix: &str,
) -> Result<T, Vec<FieldError>> {
    let mut errors = control_characters(value, prefix);
    let mut work = value.clone();
    let mut taken = Taken::default();
    loop {
        let e = match serde_path_to_error::deserialize::<_, T>(&work) {
            Ok(parsed) if errors.is_empty() => return Ok(parsed),
            Ok(_) => return Err(errors),
            Err(e) => e,
        };
        let at: Vec<Seg> = e.path().iter().filter_map(Seg::from).collect();
        let original = taken.original(&at);
        let rel = display(&original);
        let (shown, rule) = describe(rel, &e.inner().to_string());
        // A "missing field" for a value taken out here is not the client's.
        let ours = taken.paths.contains(&shown);
        let path = join(prefix, &shown);
        if !ours && !errors.iter().any(|f| f.path == path) {
            errors.push(FieldError { path, rule });
        }
        // The value the error is at goes (for a missing field: its parent).
        if at.is_empty() || errors.len() >= MAX_ERRORS || !remove(&mut work, &at) {
            return Err(errors);
        }
        taken.record(&original);
    }
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from(s: &serde_path_to_error::Segment) -> Option<Seg> {
        match s {
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            _ => None,
        }
    }
}

/// `a.b[2].c`, as the error paths are written.
fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// What was taken out of the working copy, in the client's paths.
#[derive(Default)]
struct Taken {
    paths: Vec<String>,
    /// Per list (its path as sent): the indices (as sent) removed from it.
    elements: std::collections::HashMap<String, Vec<usize>>,
}

impl Taken {
    /// A path in the working copy as the client sent it.
    fn original(&self, at: &[Seg]) -> Vec<Seg> {
        let mut out: Vec<Seg> = Vec::with_capacity(at.len());
        for seg in at {
            match seg {
                Seg::Index(w) => {
                    let mut i = *w;
                    if let Some(gone) = self.elements.get(&display(&out)) {
                        // gone is sorted: each removed index at or below
                        // the position moves it one further.
                        for g in gone {
                            if *g <= i {
                                i += 1;
                            }
                        }
                    }
                    out.push(Seg::Index(i));
                }
                key => out.push(key.clone()),
            }
        }
        out
    }

    fn record(&mut self, original: &[Seg]) {
        self.paths.push(display(original));
        if let Some((Seg::Index(i), list)) = original.split_last() {
            let gone = self.elements.entry(display(list)).or_default();
            gone.push(*i);
            gone.sort_unstable();
        }
    }
}

/// Takes the value at `path` out of `root`: a key from its object, an
/// element from its list.
fn remove(root: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root;
    for seg in parents {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Seg::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// Every string (at any depth) holding a control character other than
/// newline and tab: free text is sent on to the generator and shown in
/// logs and dashboards, where such characters hide or rewrite what is seen.
pub(crate) fn control_characters(value: &Value, prefix: &str) -> Vec<FieldError> {
    fn walk(v: &Value, path: String, out: &mut Vec<FieldError>) {
        match v {
            Value::String(s) => {
                if let Some(c) = s
                    .chars()
                    .find(|c| c.is_control() && *c != '\n' && *c != '\t')
                {
                    out.push(FieldError {
                        path,
                        rule: format!(
                            "must not contain control characters other than newline and tab (found U+{:04X})",
                            c as u32
                        ),
                    });
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    walk(item, join(&path, k), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, prefix.to_string(), &mut out);
    out
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
