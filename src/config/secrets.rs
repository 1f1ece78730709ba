//! `[secrets]`: the keys every process of one deployment shares, and the
//! refusal of a Postgres-backed process without them.

use super::Settings;
use crate::secret::Secret;
use serde::Deserialize;

/// Keys that every process of one deployment must hold the same: a webhook
/// URL handed out by one process is checked by another, and a receiver
/// verifies callbacks from any of them. Empty: the single-machine default,
/// a key made at first start and kept in `{data.dir}/secrets/`; refused for
/// a Postgres-backed process ([`Settings::check_shared_secrets`]).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretsSettings {
    /// Derives the per-variation webhook tokens: hex, at least 32 digits
    /// (what `{data.dir}/secrets/webhook.key` holds).
    #[serde(default)]
    pub webhook_token_key: Secret,
    /// HMAC-SHA256 key of the callbacks' `Reelay-Signature`: its text's bytes
    /// (what `{data.dir}/secrets/callbacks.key` holds). `callbacks.secret`
    /// is the older name of the same key.
    #[serde(default)]
    pub callback_signing_key: Secret,
}

/// The keys a process of a shared-database deployment must be given.
pub const SHARED_SECRET_KEYS: [&str; 2] =
    ["secrets.webhook_token_key", "secrets.callback_signing_key"];

impl Settings {
    /// The shape of the configured keys (checked at load).
    pub(super) fn check_secret_keys(&self) -> anyhow::Result<()> {
        let w = self.secrets.webhook_token_key.expose();
        anyhow::ensure!(
            w.is_empty() || (w.len() >= 32 && hex::decode(w).is_ok()),
            "secrets.webhook_token_key must be at least 32 hex digits (e.g. `openssl rand -hex 32`)"
        );
        anyhow::ensure!(
            self.secrets.callback_signing_key.is_empty()
                || self.callbacks.secret.is_empty()
                || self.secrets.callback_signing_key.expose() == self.callbacks.secret.expose(),
            "secrets.callback_signing_key and callbacks.secret (its older name) are both set and differ: set one"
        );
        Ok(())
    }

    /// The callback signing key configured under either of its names
    /// (empty: the data-dir default).
    pub fn callback_signing_key(&self) -> &Secret {
        if self.secrets.callback_signing_key.is_empty() {
            &self.callbacks.secret
        } else {
            &self.secrets.callback_signing_key
        }
    }

    /// A process whose job store is Postgres shares it with other processes
    /// on other machines, so a key made into this machine's data dir would
    /// disagree with theirs: refused, naming every missing key.
    pub fn check_shared_secrets(&self) -> anyhow::Result<()> {
        if !crate::jobs::store::pg::is_postgres_url(self.database.url.expose()) {
            return Ok(());
        }
        let missing: Vec<String> = [
            self.secrets.webhook_token_key.is_empty(),
            self.callback_signing_key().is_empty(),
        ]
        .iter()
        .zip(SHARED_SECRET_KEYS)
        .filter(|(m, _)| **m)
        .map(|(_, k)| {
            format!(
                "{k} (REELAY__{})",
                k.to_ascii_uppercase().replace('.', "__")
            )
        })
        .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "database.url is Postgres, so every process of the deployment must share its keys; missing: {}",
            missing.join(", ")
        );
        Ok(())
    }
}
