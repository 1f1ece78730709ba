//! Object transfers to and from local files: streamed, hashed while they
//! move, multipart above the threshold, fsynced before they are reported.

use super::*;

impl ObjectStore {
    /// Streams the object into `path` (replacing it), hashing as it writes,
    /// and fsyncs before returning. A failed download leaves no file behind.
    #[tracing::instrument(skip(self), fields(key = %key))]
    pub async fn download_to_file(
        &self,
        bucket: &str,
        key: &ObjectKey,
        path: &Path,
    ) -> Result<Downloaded, StorageError> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(StorageError::NotFound)
            }
            Err(e) => return Err(backend("get object")(e)),
        };
        let expected = out.content_length.map(|n| n.max(0) as u64);
        let res = write_stream_to_file(out.body, path, expected).await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        res
    }

    /// Uploads a file: one PUT below the multipart threshold, parts of
    /// 5-16 MiB above it (aborted on failure). Hashes the file on the way.
    #[tracing::instrument(skip(self), fields(key = %key))]
    pub async fn upload_file(
        &self,
        bucket: &str,
        key: &ObjectKey,
        path: &Path,
        content_type: &str,
        cache_control: &str,
    ) -> Result<Uploaded, StorageError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(StorageError::io("stat upload file"))?
            .len();
        if size < self.multipart_threshold && size <= MAX_SINGLE_PUT_BYTES {
            self.upload_single(bucket, key, path, size, content_type, cache_control)
                .await
        } else {
            self.upload_multipart(bucket, key, path, size, content_type, cache_control)
                .await
        }
    }

    async fn upload_single(
        &self,
        bucket: &str,
        key: &ObjectKey,
        path: &Path,
        size: u64,
        content_type: &str,
        cache_control: &str,
    ) -> Result<Uploaded, StorageError> {
        // Hash first, then stream from disk: the SDK can replay a file body
        // on retry, which it could not do with a hashing stream.
        let sha256_hex = sha256_file(path).await?;
        let body = ByteStream::read_from()
            .path(path)
            .length(aws_smithy_types::byte_stream::Length::Exact(size))
            .build()
            .await
            .map_err(backend("open upload file"))?;
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key.as_str())
            .content_type(content_type)
            .cache_control(cache_control)
            .content_length(size as i64)
            .body(body)
            .send()
            .await
            .map_err(backend("put object"))?;
        Ok(Uploaded {
            size,
            etag: out.e_tag,
            sha256_hex,
        })
    }

    fn part_size(&self, size: u64) -> u64 {
        let base = self
            .multipart_threshold
            .clamp(MIN_PART_BYTES, MAX_PART_BYTES);
        base.max(size.div_ceil(MAX_PARTS))
    }

    async fn upload_multipart(
        &self,
        bucket: &str,
        key: &ObjectKey,
        path: &Path,
        size: u64,
        content_type: &str,
        cache_control: &str,
    ) -> Result<Uploaded, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key.as_str())
            .content_type(content_type)
            .cache_control(cache_control)
            .send()
            .await
            .map_err(backend("create multipart upload"))?;
        let upload_id = created.upload_id.ok_or_else(|| StorageError::Backend {
            op: "create multipart upload",
            message: "no upload id in the response".into(),
        })?;
        let res = self.upload_parts(bucket, key, path, size, &upload_id).await;
        if res.is_err() {
            self.abort_multipart(bucket, key, &upload_id).await;
        }
        res
    }

    async fn upload_parts(
        &self,
        bucket: &str,
        key: &ObjectKey,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Uploaded, StorageError> {
        let part_size = self.part_size(size);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(StorageError::io("open upload file"))?;
        let mut hasher = Sha256::new();
        let mut parts = Vec::new();
        let mut sent = 0u64;
        let mut part_number = 1i32;
        // Always at least one part, so an empty file still completes.
        while sent < size || parts.is_empty() {
            let want = part_size.min(size - sent) as usize;
            let mut buf = vec![0u8; want];
            file.read_exact(&mut buf)
                .await
                .map_err(StorageError::io("read upload file"))?;
            hasher.update(&buf);
            let out = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key.as_str())
                .upload_id(upload_id)
                .part_number(part_number)
                .content_length(want as i64)
                .body(ByteStream::from(Bytes::from(buf)))
                .send()
                .await
                .map_err(backend("upload part"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(out.e_tag)
                    .build(),
            );
            sent += want as u64;
            part_number += 1;
        }
        let etag = self
            .complete_multipart(bucket, key, upload_id, parts, "complete multipart upload")
            .await?;
        Ok(Uploaded {
            size,
            etag,
            sha256_hex: hex::encode(hasher.finalize()),
        })
    }

    /// Completes a multipart upload (or copy) from its parts; the ETag.
    pub(super) async fn complete_multipart(
        &self,
        bucket: &str,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        op: &'static str,
    ) -> Result<Option<String>, StorageError> {
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(backend(op))?;
        Ok(out.e_tag)
    }

    /// Aborts a failed multipart upload (or copy). Best effort: the caller
    /// needs the original error, not this one.
    pub(super) async fn abort_multipart(&self, bucket: &str, key: &ObjectKey, upload_id: &str) {
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(error = %DisplayErrorContext(e), "could not abort multipart upload");
        }
    }
}

async fn sha256_file(path: &Path) -> Result<String, StorageError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(StorageError::io("open file to hash"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(StorageError::io("read file to hash"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

async fn write_stream_to_file(
    mut body: ByteStream,
    path: &Path,
    expected: Option<u64>,
) -> Result<Downloaded, StorageError> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(StorageError::io("create download file"))?;
    let mut out = tokio::io::BufWriter::with_capacity(READ_BUF_BYTES, file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(backend("read object body"))? {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .map_err(StorageError::io("write download file"))?;
    }
    out.flush()
        .await
        .map_err(StorageError::io("write download file"))?;
    out.into_inner()
        .sync_all()
        .await
        .map_err(StorageError::io("fsync download file"))?;
    if let Some(expected) = expected {
        if expected != size {
            return Err(StorageError::Backend {
                op: "get object",
                message: format!("body ended after {size} of {expected} bytes"),
            });
        }
    }
    Ok(Downloaded {
        size,
        sha256_hex: hex::encode(hasher.finalize()),
    })
}
