//! Object storage: the S3 client every other module goes through
//! ([`ObjectStore`]), validated key types, S3 event types, and the embedded
//! S3-compatible server used by `reelay serve` / `reelay demo` and tests.

mod client;
pub mod credentials;
pub mod event;
mod keys;
mod server;

#[cfg(test)]
mod tests;

pub use client::{Downloaded, GetObject, ObjectMeta, ObjectStore, Uploaded};
pub use event::{S3EventNotification, S3EventRecord};
pub use keys::{BucketName, BucketNameError, KeyError, ObjectKey, MAX_KEY_BYTES};
pub use server::{
    max_key_bytes as embedded_max_key_bytes, start_embedded, EmbeddedOptions, EmbeddedS3,
    NotificationTarget,
};

use crate::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// Where objects live and how to reach them. The same settings drive AWS S3,
/// MinIO, Garage or the embedded server: only the values change.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// Run the in-process S3-compatible server (default true). Its bound
    /// address is written into `endpoint` at start.
    pub embedded: bool,
    /// S3 endpoint URL, e.g. `http://127.0.0.1:9000`. Empty means AWS's
    /// regional endpoint.
    pub endpoint: String,
    /// Signing region (default `us-east-1`).
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Path-style URLs (`endpoint/bucket/key`); needed by the embedded server,
    /// MinIO and Garage (default true).
    pub force_path_style: bool,
    /// Bucket the generator uploads 4K masters into (default `reelay-masters`).
    pub masters_bucket: String,
    /// Bucket the CDN serves published renditions from (default `reelay-cdn`).
    pub cdn_bucket: String,
    /// Limit for one S3 request attempt, and for connecting (default 120 s).
    /// A single PUT below `multipart_threshold_bytes` must fit in it.
    pub request_timeout_secs: u64,
    /// Files at least this large are uploaded in parts (default 64 MiB).
    pub multipart_threshold_bytes: u64,
    /// Address the embedded server binds (default `127.0.0.1`).
    pub embedded_host: String,
    /// Port the embedded server binds; 0 picks a free one (default 0).
    pub embedded_port: u16,
    /// The embedded server posts an S3 event notification for every new
    /// object to reelay's own intake (default true).
    pub embedded_events: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            embedded: true,
            endpoint: String::new(),
            region: "us-east-1".to_owned(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            force_path_style: true,
            masters_bucket: "reelay-masters".to_owned(),
            cdn_bucket: "reelay-cdn".to_owned(),
            request_timeout_secs: 120,
            multipart_threshold_bytes: 64 * 1024 * 1024,
            embedded_host: "127.0.0.1".to_owned(),
            embedded_port: 0,
            embedded_events: true,
        }
    }
}

impl StorageConfig {
    /// Options for [`start_embedded`] from these settings: both buckets are
    /// created under `root`.
    pub fn embedded_options(
        &self,
        root: PathBuf,
        notifications: Option<NotificationTarget>,
    ) -> EmbeddedOptions {
        EmbeddedOptions {
            root,
            host: self.embedded_host.clone(),
            port: self.embedded_port,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            region: self.region.clone(),
            buckets: vec![self.masters_bucket.clone(), self.cdn_bucket.clone()],
            upload_bucket: Some(self.masters_bucket.clone()),
            notifications,
        }
    }
}

/// What went wrong talking to object storage. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found")]
    NotFound,
    #[error("invalid object key: {0}")]
    InvalidKey(#[from] KeyError),
    #[error("invalid bucket name: {0}")]
    InvalidBucket(#[from] BucketNameError),
    #[error("requested range not satisfiable")]
    InvalidRange,
    #[error("object storage {op} failed: {message}")]
    Backend { op: &'static str, message: String },
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid storage configuration: {0}")]
    Config(String),
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound)
    }

    pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> StorageError {
        move |source| StorageError::Io { op, source }
    }
}
