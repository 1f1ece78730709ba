//! The per-variation webhook token: made from a secret and the variation id,
//! so it can be made again for a resubmission without being stored (only its
//! SHA-256 is kept on the row).

use sha2::{Digest, Sha256};

/// A keyed hash of the variation id.
pub fn webhook_token(secret: &[u8], variation_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update([0u8]);
    h.update(variation_id.as_bytes());
    hex::encode(h.finalize())
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}
