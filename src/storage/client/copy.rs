//! Server-side copies: the bytes never pass through reelay.

use super::*;

/// Parts of a multipart copy (S3 allows up to 5 GiB per part).
const COPY_PART_BYTES: u64 = 1024 * 1024 * 1024;

impl ObjectStore {
    /// Copies `from` to `to` inside `bucket` on the server: one CopyObject up
    /// to `single_max` bytes (S3's limit is 5 GiB), a multipart copy of
    /// `UploadPartCopy` ranges above it. `size` is the source's size as read
    /// by a HEAD just before. Returns the copy's ETag.
    #[tracing::instrument(skip(self), fields(from = %from, to = %to))]
    pub async fn copy_within(
        &self,
        bucket: &str,
        from: &ObjectKey,
        to: &ObjectKey,
        size: u64,
    ) -> Result<Option<String>, StorageError> {
        self.copy_in_parts_above(
            bucket,
            from,
            to,
            size,
            MAX_SINGLE_PUT_BYTES,
            COPY_PART_BYTES,
        )
        .await
    }

    pub(crate) async fn copy_in_parts_above(
        &self,
        bucket: &str,
        from: &ObjectKey,
        to: &ObjectKey,
        size: u64,
        single_max: u64,
        part_bytes: u64,
    ) -> Result<Option<String>, StorageError> {
        let source = copy_source(bucket, from);
        if size <= single_max {
            let out = self
                .client
                .copy_object()
                .bucket(bucket)
                .key(to.as_str())
                .copy_source(&source)
                .send()
                .await
                .map_err(backend("copy object"))?;
            return Ok(out.copy_object_result.and_then(|r| r.e_tag));
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(to.as_str())
            .send()
            .await
            .map_err(backend("create multipart copy"))?;
        let upload_id = created.upload_id.ok_or_else(|| StorageError::Backend {
            op: "create multipart copy",
            message: "no upload id in the response".into(),
        })?;
        let res = self
            .copy_parts(bucket, &source, to, size, part_bytes.max(1), &upload_id)
            .await;
        if res.is_err() {
            self.abort_multipart(bucket, to, &upload_id).await;
        }
        res
    }

    async fn copy_parts(
        &self,
        bucket: &str,
        source: &str,
        to: &ObjectKey,
        size: u64,
        part_bytes: u64,
        upload_id: &str,
    ) -> Result<Option<String>, StorageError> {
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1i32;
        while start < size {
            let end = (start + part_bytes).min(size) - 1;
            let out = self
                .client
                .upload_part_copy()
                .bucket(bucket)
                .key(to.as_str())
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(source)
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await
                .map_err(backend("upload part copy"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.copy_part_result.and_then(|r| r.e_tag))
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        self.complete_multipart(bucket, to, upload_id, parts, "complete multipart copy")
            .await
    }
}

/// `x-amz-copy-source`: `bucket/key`, the key percent-encoded except `/`.
fn copy_source(bucket: &str, key: &ObjectKey) -> String {
    let mut out = String::with_capacity(bucket.len() + key.as_str().len() + 1);
    out.push_str(bucket);
    out.push('/');
    for b in key.as_str().bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_source_keeps_slashes_and_encodes_the_rest() {
        let key = ObjectKey::parse("verified/c/a b+c.mp4").unwrap();
        assert_eq!(copy_source("m", &key), "m/verified/c/a%20b%2Bc.mp4");
    }
}
