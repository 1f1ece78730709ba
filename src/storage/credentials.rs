//! The embedded S3 server's credentials: made per install, never shipped.
//!
//! With `storage.embedded = true` and no `storage.secret_access_key`
//! configured, the first start writes a fresh access key id and secret to
//! `{data.dir}/secrets/s3-credentials`, in the AWS shared-credentials format
//! (profile `reelay`), and every later start reads them back. The AWS CLI
//! and SDKs can use the file as it is:
//!
//! ```sh
//! AWS_SHARED_CREDENTIALS_FILE=data/secrets/s3-credentials AWS_PROFILE=reelay \
//!   aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://reelay-masters/
//! ```
//!
//! An external store has no such default: it needs configured credentials.
//! Under `REELAY_ENVIRONMENT=production` the embedded server refuses to
//! start with an empty secret or the one older releases shipped.

use crate::secret::Secret;
use std::path::{Path, PathBuf};

/// The file that holds the embedded server's credentials.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("s3-credentials")
}

/// The profile name inside that file.
pub const PROFILE: &str = "reelay";

/// The secret access key `config/default.toml` once shipped: public, so
/// never accepted in production.
pub const FORMER_DEFAULT_SECRET: &str = "reelay-embedded-secret";

/// Why a production start with the embedded store is refused, if it is.
pub fn production_problem(embedded: bool, secret: &Secret) -> Option<String> {
    if !embedded {
        return None;
    }
    if secret.is_empty() {
        return Some(
            "storage.embedded = true under REELAY_ENVIRONMENT=production needs storage.secret_access_key (REELAY__STORAGE__SECRET_ACCESS_KEY, at least 32 characters), or storage.embedded = false with an external store".into(),
        );
    }
    let s = secret.expose();
    if s == FORMER_DEFAULT_SECRET || s.len() < 32 {
        return Some(
            "storage.secret_access_key is the former shipped default or shorter than 32 characters: refused under REELAY_ENVIRONMENT=production (REELAY__STORAGE__SECRET_ACCESS_KEY)".into(),
        );
    }
    None
}

/// An access key id and secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// Reads the install's credentials from `path`, or makes and writes them
/// (readable by the owner only) when the file is missing or unusable.
pub async fn load_or_create(path: &Path) -> std::io::Result<Credentials> {
    if let Ok(text) = tokio::fs::read_to_string(path).await {
        if let Some(c) = parse(&text) {
            return Ok(c);
        }
        tracing::warn!(path = %path.display(), "the embedded S3 credentials file is unusable; making new credentials");
    }
    let made = Credentials {
        access_key_id: format!("REELAY{}", random_upper(14)),
        secret_access_key: Secret::new(random_hex(24)),
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, render(&made)).await?;
    restrict(&tmp).await?;
    tokio::fs::rename(&tmp, path).await?;
    tracing::info!(path = %path.display(), "made credentials for the embedded S3 server (the file holds them)");
    Ok(made)
}

fn render(c: &Credentials) -> String {
    format!(
        "# reelay's embedded S3 server (AWS shared-credentials format).\n[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        c.access_key_id,
        c.secret_access_key.expose()
    )
}

/// The `[reelay]` profile's two keys, or `None` when either is missing.
pub fn parse(text: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == PROFILE;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        match k.trim() {
            "aws_access_key_id" => id = Some(v.trim().to_string()),
            "aws_secret_access_key" => secret = Some(v.trim().to_string()),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(id), Some(s)) if !id.is_empty() && s.len() >= 16 => Some(Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(s),
        }),
        _ => None,
    }
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

fn random_upper(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..n)
        .map(|_| ALPHABET[rand::random::<u8>() as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(unix)]
async fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).await
}

#[cfg(not(unix))]
async fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_are_made_once_per_install_and_read_back() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = load_or_create(&credentials_path(a.path())).await.unwrap();
        let again = load_or_create(&credentials_path(a.path())).await.unwrap();
        assert_eq!(first.access_key_id, again.access_key_id);
        assert_eq!(
            first.secret_access_key.expose(),
            again.secret_access_key.expose()
        );
        let other = load_or_create(&credentials_path(b.path())).await.unwrap();
        assert_ne!(first.access_key_id, other.access_key_id);
        assert_ne!(
            first.secret_access_key.expose(),
            other.secret_access_key.expose()
        );
        assert!(first.secret_access_key.expose().len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(credentials_path(a.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "owner only: {mode:o}");
        }
    }

    #[test]
    fn the_file_is_an_aws_shared_credentials_profile() {
        let text = "[default]\naws_access_key_id = OTHER\naws_secret_access_key = nope-nope-nope-nope\n\n[reelay]\naws_access_key_id = REELAYX\naws_secret_access_key = 0123456789abcdef0123\n";
        let c = parse(text).unwrap();
        assert_eq!(c.access_key_id, "REELAYX");
        assert_eq!(c.secret_access_key.expose(), "0123456789abcdef0123");
        assert!(parse("[reelay]\naws_access_key_id = A\n").is_none());
        assert!(parse(
            "[other]\naws_access_key_id = A\naws_secret_access_key = 0123456789abcdef\n"
        )
        .is_none());
    }

    #[test]
    fn production_refuses_an_empty_or_former_default_secret() {
        assert!(production_problem(true, &Secret::default()).is_some());
        assert!(production_problem(true, &Secret::new(FORMER_DEFAULT_SECRET)).is_some());
        assert!(production_problem(true, &Secret::new("short")).is_some());
        assert!(production_problem(true, &Secret::new("x".repeat(40))).is_none());
        assert!(production_problem(false, &Secret::default()).is_none());
    }
}
