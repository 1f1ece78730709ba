//! [`ObjectStore`]: the only way reelay talks to object storage. It speaks
//! plain S3 through aws-sdk-s3, so AWS, MinIO, Garage or the embedded server
//! differ only in configuration.

use super::keys::ObjectKey;
use super::{StorageConfig, StorageError};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
};
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod copy;
mod files;

/// S3's smallest allowed part (all but the last).
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
const MAX_PART_BYTES: u64 = 16 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// S3 refuses a single PUT above 5 GiB.
const MAX_SINGLE_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
const READ_BUF_BYTES: usize = 1024 * 1024;
/// A store that takes longer than this to accept a connection is down, not
/// slow; failing fast lets the caller retry instead of waiting the whole
/// request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// As S3 sends it, quotes included (ready for an `ETag` header).
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    pub cache_control: Option<String>,
    /// User metadata (`x-amz-meta-*`), names without the prefix.
    pub metadata: HashMap<String, String>,
}

/// A file fetched by [`ObjectStore::download_to_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub size: u64,
    pub sha256_hex: String,
}

/// A file stored by [`ObjectStore::upload_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// As S3 sends it, quotes included.
    pub etag: Option<String>,
    pub sha256_hex: String,
}

/// An object being read: the fields an HTTP handler needs for its status and
/// headers, and the body as a stream.
pub struct GetObject {
    /// Bytes in `body` (the range's length for a ranged read).
    pub content_length: u64,
    /// `bytes start-end/total` when a range was served (status 206).
    pub content_range: Option<String>,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    pub accept_ranges: Option<String>,
    pub body: BoxStream<'static, Result<Bytes, io::Error>>,
}

impl fmt::Debug for GetObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetObject")
            .field("content_length", &self.content_length)
            .field("content_range", &self.content_range)
            .field("etag", &self.etag)
            .field("content_type", &self.content_type)
            .field("cache_control", &self.cache_control)
            .field("last_modified", &self.last_modified)
            .field("accept_ranges", &self.accept_ranges)
            .finish_non_exhaustive()
    }
}

/// S3 client for reelay. Cheap to clone.
#[derive(Clone)]
pub struct ObjectStore {
    client: aws_sdk_s3::Client,
    region: String,
    multipart_threshold: u64,
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStore")
            .field("region", &self.region)
            .field("multipart_threshold", &self.multipart_threshold)
            .finish_non_exhaustive()
    }
}

fn backend<E>(op: &'static str) -> impl FnOnce(E) -> StorageError
where
    E: std::error::Error,
{
    move |e| {
        crate::telemetry::metrics::inc(
            "reelay_object_store_errors_total",
            &[("operation", &crate::telemetry::metrics::kind_label(op))],
        );
        StorageError::Backend {
            op,
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl ObjectStore {
    /// Builds the client offline: no config files, no metadata service.
    pub fn new(cfg: &StorageConfig) -> Result<Self, StorageError> {
        if cfg.embedded && cfg.endpoint.is_empty() {
            return Err(StorageError::Config(
                "storage.endpoint is empty: start the embedded server first".into(),
            ));
        }
        if cfg.access_key_id.is_empty() || cfg.secret_access_key.is_empty() {
            return Err(StorageError::Config(
                "storage.access_key_id and storage.secret_access_key are required".into(),
            ));
        }
        if cfg.request_timeout_secs == 0 {
            return Err(StorageError::Config(
                "storage.request_timeout_secs must be positive".into(),
            ));
        }
        let timeout = Duration::from_secs(cfg.request_timeout_secs);
        let credentials = Credentials::new(
            cfg.access_key_id.clone(),
            cfg.secret_access_key.expose().to_owned(),
            None,
            None,
            "reelay-config",
        );
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(cfg.force_path_style)
            // Third-party servers may not know the newer flexible checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
                    .operation_attempt_timeout(timeout)
                    .build(),
            );
        if !cfg.endpoint.is_empty() {
            b = b.endpoint_url(cfg.endpoint.clone());
        }
        Ok(ObjectStore {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            region: cfg.region.clone(),
            multipart_threshold: cfg.multipart_threshold_bytes.max(MIN_PART_BYTES),
        })
    }

    /// The raw SDK client, for tests that must send what `ObjectStore` refuses.
    #[cfg(test)]
    pub(super) fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Creates the bucket unless it already exists and is ours.
    #[tracing::instrument(skip(self))]
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            Err(e) => return Err(backend("head bucket")(e)),
        }
        let mut req = self.client.create_bucket().bucket(bucket);
        // us-east-1 is the one region that refuses an explicit constraint.
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
            // Created concurrently (s3s-fs says BucketAlreadyExists even for
            // our own): fine if we can reach it now.
            Err(e) if error_code(&e) == Some("BucketAlreadyExists") => self
                .client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(drop)
                .map_err(|_| backend("create bucket")(e)),
            Err(e) => Err(backend("create bucket")(e)),
        }
    }

    /// A URL anyone can PUT the object to until `expires` (at most 7 days).
    /// No Content-Type is signed, so the uploader may send any.
    pub async fn presign_put(
        &self,
        bucket: &str,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<String, StorageError> {
        let presigning = PresigningConfig::expires_in(expires).map_err(backend("presign put"))?;
        let req = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(backend("presign put"))?;
        Ok(req.uri().to_owned())
    }

    /// A URL anyone can GET the object from until `expires` (at most 7 days).
    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<String, StorageError> {
        let presigning = PresigningConfig::expires_in(expires).map_err(backend("presign get"))?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(backend("presign get"))?;
        Ok(req.uri().to_owned())
    }

    /// The object's metadata, or `None` if it does not exist.
    #[tracing::instrument(skip(self), fields(key = %key))]
    pub async fn head(
        &self,
        bucket: &str,
        key: &ObjectKey,
    ) -> Result<Option<ObjectMeta>, StorageError> {
        let out = match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(backend("head object")(e)),
        };
        Ok(Some(ObjectMeta {
            size: out.content_length.unwrap_or(0).max(0) as u64,
            etag: out.e_tag,
            content_type: out.content_type,
            last_modified: out.last_modified.as_ref().and_then(to_chrono),
            cache_control: out.cache_control,
            metadata: out.metadata.unwrap_or_default(),
        }))
    }

    /// Stores a small object from memory.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &ObjectKey,
        bytes: Vec<u8>,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StorageError> {
        self.put_bytes_with_metadata(bucket, key, bytes, content_type, cache_control, &[])
            .await
            .map(drop)
    }

    /// Stores a small object from memory with user metadata (`x-amz-meta-*`,
    /// names without the prefix). Returns the ETag as S3 sends it.
    pub async fn put_bytes_with_metadata(
        &self,
        bucket: &str,
        key: &ObjectKey,
        bytes: Vec<u8>,
        content_type: &str,
        cache_control: &str,
        metadata: &[(&str, &str)],
    ) -> Result<Option<String>, StorageError> {
        let mut req = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key.as_str())
            .content_type(content_type)
            .cache_control(cache_control)
            .body(ByteStream::from(bytes));
        for (k, v) in metadata {
            req = req.metadata(*k, *v);
        }
        req.send()
            .await
            .map(|out| out.e_tag)
            .map_err(backend("put object"))
    }

    /// Opens the object for streaming, optionally a byte range given as an
    /// HTTP `Range` value (`bytes=0-99`). `None` if it does not exist;
    /// [`StorageError::InvalidRange`] if the range cannot be satisfied.
    #[tracing::instrument(skip(self), fields(key = %key))]
    pub async fn get(
        &self,
        bucket: &str,
        key: &ObjectKey,
        range: Option<&str>,
    ) -> Result<Option<GetObject>, StorageError> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key.as_str())
            .set_range(range.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e)
                if error_code(&e) == Some("InvalidRange")
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 416) =>
            {
                return Err(StorageError::InvalidRange)
            }
            Err(e) => return Err(backend("get object")(e)),
        };
        let body = futures::stream::try_unfold(out.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(io::Error::other(e)),
            }
        });
        Ok(Some(GetObject {
            content_length: out.content_length.unwrap_or(0).max(0) as u64,
            content_range: out.content_range,
            etag: out.e_tag,
            content_type: out.content_type,
            cache_control: out.cache_control,
            last_modified: out.last_modified.as_ref().and_then(to_chrono),
            accept_ranges: out.accept_ranges,
            body: Box::pin(body),
        }))
    }

    /// Deletes the object; deleting a missing object is not an error.
    pub async fn delete(&self, bucket: &str, key: &ObjectKey) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key.as_str())
            .send()
            .await
            .map(drop)
            .map_err(backend("delete object"))
    }

    /// Every key under `prefix` (all pages), in S3's order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(backend("list objects"))?;
            keys.extend(
                page.contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| o.key),
            );
        }
        Ok(keys)
    }
}
