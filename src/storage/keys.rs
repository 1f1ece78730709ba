//! Validated object keys and bucket names.
//!
//! Keys are checked once, at the edge, so nothing that reaches a backend can
//! name a path outside its bucket (s3s-fs maps `<bucket>/<key>` straight onto
//! the file system: `../other-bucket/x` would otherwise land in another bucket).

use std::fmt;

/// S3's own limit on key length, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a string is not an acceptable object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("object key is empty")]
    Empty,
    #[error("object key is {0} bytes long; the limit is 1024")]
    TooLong(usize),
    #[error("object key must not start with '/'")]
    LeadingSlash,
    #[error("object key must not contain empty segments ('//' or a trailing '/')")]
    EmptySegment,
    #[error("object key must not contain '.' or '..' segments")]
    DotSegment,
    #[error("object key must not contain a backslash")]
    Backslash,
    #[error("object key must not contain control characters")]
    ControlCharacter,
}

/// An S3 object key that is safe on every backend: relative, no dot segments,
/// no empty segments, no backslashes or control characters, at most 1024 bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(s: &str) -> Result<ObjectKey, KeyError> {
        if s.is_empty() {
            return Err(KeyError::Empty);
        }
        if s.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong(s.len()));
        }
        if s.starts_with('/') {
            return Err(KeyError::LeadingSlash);
        }
        if s.contains('\\') {
            return Err(KeyError::Backslash);
        }
        // `char::is_control` covers NUL, the rest of C0, DEL and C1.
        if s.chars().any(char::is_control) {
            return Err(KeyError::ControlCharacter);
        }
        for segment in s.split('/') {
            match segment {
                "" => return Err(KeyError::EmptySegment),
                "." | ".." => return Err(KeyError::DotSegment),
                _ => {}
            }
        }
        Ok(ObjectKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

impl TryFrom<&str> for ObjectKey {
    type Error = KeyError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        ObjectKey::parse(s)
    }
}

/// Why a string is not an acceptable bucket name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketNameError {
    #[error("bucket name must be 3 to 63 characters long")]
    Length,
    #[error("bucket name may contain only lowercase letters, digits, '-' and '.'")]
    Character,
    #[error("bucket name must start and end with a letter or digit")]
    Edge,
    #[error("bucket name must not contain '..', '.-' or '-.'")]
    Adjacent,
    #[error("bucket name must not look like an IP address")]
    IpAddress,
    #[error("bucket name uses a prefix or suffix reserved by S3")]
    Reserved,
}

/// A bucket name following S3's general-purpose bucket rules.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(s: &str) -> Result<BucketName, BucketNameError> {
        if !(3..=63).contains(&s.len()) {
            return Err(BucketNameError::Length);
        }
        let bytes = s.as_bytes();
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        {
            return Err(BucketNameError::Character);
        }
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(BucketNameError::Edge);
        }
        if s.contains("..") || s.contains(".-") || s.contains("-.") {
            return Err(BucketNameError::Adjacent);
        }
        if s.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(BucketNameError::IpAddress);
        }
        const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
        const RESERVED_SUFFIXES: [&str; 3] = ["-s3alias", "--ol-s3", "--x-s3"];
        if RESERVED_PREFIXES.iter().any(|p| s.starts_with(p))
            || RESERVED_SUFFIXES.iter().any(|p| s.ends_with(p))
        {
            return Err(BucketNameError::Reserved);
        }
        Ok(BucketName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for BucketName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BucketName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path, PathBuf};

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "a",
            "masters/2026/abc.mp4",
            "cdn/campaign-1/asset/0123abcd/1080p.mp4",
            "with space/and+plus/%2e%2e",
            "unicode/vidéo-ü.mp4",
            "...",
            "a.b/..c/d..",
            ".hidden/file",
        ] {
            let parsed = ObjectKey::parse(key).unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(parsed.as_str(), key);
        }
        assert!(ObjectKey::parse(&"k".repeat(1024)).is_ok());
    }

    #[test]
    fn unsafe_keys_are_rejected_with_the_reason() {
        let cases: &[(&str, KeyError)] = &[
            ("", KeyError::Empty),
            ("/abs", KeyError::LeadingSlash),
            ("..", KeyError::DotSegment),
            (".", KeyError::DotSegment),
            ("../other-bucket/x", KeyError::DotSegment),
            ("a/../../x", KeyError::DotSegment),
            ("a/./b", KeyError::DotSegment),
            ("a/..", KeyError::DotSegment),
            ("a//b", KeyError::EmptySegment),
            ("a/", KeyError::EmptySegment),
            ("a\\..\\b", KeyError::Backslash),
            ("a\0b", KeyError::ControlCharacter),
            ("a\nb", KeyError::ControlCharacter),
            ("a\u{7f}", KeyError::ControlCharacter),
            ("a\u{85}", KeyError::ControlCharacter),
        ];
        for (key, want) in cases {
            assert_eq!(ObjectKey::parse(key).as_ref(), Err(want), "case {key:?}");
        }
        assert_eq!(
            ObjectKey::parse(&"k".repeat(1025)),
            Err(KeyError::TooLong(1025))
        );
    }

    /// Resolves `key` under `root` lexically, the way a naive server would,
    /// without touching the file system.
    fn resolve_lexically(root: &Path, key: &str) -> Option<PathBuf> {
        let mut out = root.to_path_buf();
        for c in Path::new(key).components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return None;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(out)
    }

    fn assert_contained(key: &str) {
        let root = Path::new("/data/bucket");
        if let Ok(parsed) = ObjectKey::parse(key) {
            assert!(
                Path::new(parsed.as_str())
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "accepted key {key:?} has a non-normal path component"
            );
            let resolved = resolve_lexically(root, parsed.as_str()).expect("resolves");
            assert!(
                resolved.starts_with(root) && resolved != root,
                "accepted key {key:?} resolves to {resolved:?}, outside the bucket"
            );
        }
    }

    #[test]
    fn no_accepted_key_of_up_to_six_hostile_characters_escapes_the_bucket() {
        // Every string over this alphabet up to length 6 (about 300k cases).
        const ALPHABET: [char; 8] = ['a', '.', '/', '\\', '\0', '%', ' ', 'é'];
        let mut accepted = 0usize;
        let mut buf = String::new();
        fn walk(buf: &mut String, depth: usize, accepted: &mut usize) {
            if ObjectKey::parse(buf).is_ok() {
                *accepted += 1;
            }
            assert_contained(buf);
            if depth == 0 {
                return;
            }
            for c in ALPHABET {
                buf.push(c);
                walk(buf, depth - 1, accepted);
                buf.pop();
            }
        }
        walk(&mut buf, 6, &mut accepted);
        assert!(
            accepted > 1000,
            "the generator should exercise accepted keys"
        );
    }

    #[test]
    fn no_accepted_random_key_escapes_the_bucket() {
        // Deterministic xorshift so failures reproduce.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const PIECES: [&str; 10] = ["..", ".", "/", "a", "b/", "../", "/..", "%2e", "\\", "x.y"];
        for _ in 0..50_000 {
            let len = (next() % 12) as usize;
            let key: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            assert_contained(&key);
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in [
            "abc",
            "reelay-masters",
            "reelay.cdn",
            "a1b2c3",
            &"a".repeat(63),
        ] {
            assert!(BucketName::parse(ok).is_ok(), "{ok:?} should be valid");
        }
        let cases: &[(&str, BucketNameError)] = &[
            ("ab", BucketNameError::Length),
            (&"a".repeat(64), BucketNameError::Length),
            ("Upper", BucketNameError::Character),
            ("under_score", BucketNameError::Character),
            ("a/b", BucketNameError::Character),
            ("-abc", BucketNameError::Edge),
            ("abc.", BucketNameError::Edge),
            (".abc", BucketNameError::Edge),
            ("a..b", BucketNameError::Adjacent),
            ("a.-b", BucketNameError::Adjacent),
            ("192.168.1.1", BucketNameError::IpAddress),
            ("xn--abc", BucketNameError::Reserved),
            ("abc-s3alias", BucketNameError::Reserved),
        ];
        for (name, want) in cases {
            assert_eq!(BucketName::parse(name).as_ref(), Err(want), "case {name:?}");
        }
    }
}
