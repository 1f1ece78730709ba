//! [`GuardedFs`]: what s3s-fs lacks in front of it: key checks, fsync before
//! answering, and event emission.

use super::*;

/// `s3s::S3` over s3s-fs with key checks, fsync and event emission.
pub(super) struct GuardedFs {
    pub(super) inner: s3s_fs::FileSystem,
    pub(super) root: PathBuf,
    pub(super) events: Option<EventEmitter>,
}

impl std::fmt::Debug for GuardedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedFs")
            .field("root", &self.root)
            .finish()
    }
}

pub(super) fn check_bucket(bucket: &str) -> S3Result<()> {
    BucketName::parse(bucket)
        .map(drop)
        .map_err(|e| s3_error!(InvalidBucketName, "{e}"))
}

pub(super) fn check_key(key: &str) -> S3Result<()> {
    ObjectKey::parse(key)
        .map(drop)
        .map_err(|e| s3_error!(InvalidArgument, "invalid object key: {e}"))
}

/// s3s-fs keeps per-object metadata in files named
/// `.bucket-<b64 bucket>.object-<b64 key>.upload-<uuid>.metadata.json`, so a
/// long key fails deep inside it with a 500; refuse it up front instead.
pub(super) fn check_storable(bucket: &str, key: &str) -> S3Result<()> {
    let max = max_key_bytes(bucket);
    if key.len() > max {
        return Err(s3_error!(
            KeyTooLongError,
            "the embedded server stores keys up to {max} bytes in this bucket"
        ));
    }
    Ok(())
}

/// The longest key (in bytes) the embedded server can store in `bucket`:
/// its metadata file name, which holds bucket and key in base64, must fit
/// the file system's 255-byte name limit.
pub fn max_key_bytes(bucket: &str) -> usize {
    const NAME_MAX: usize = 255;
    let b64 = |n: usize| (n * 4).div_ceil(3);
    let fixed = ".bucket-".len()
        + b64(bucket.len())
        + ".object-".len()
        + ".upload-".len()
        + 36
        + ".metadata.json".len();
    let room = NAME_MAX.saturating_sub(fixed);
    // The largest n whose base64 length fits the room.
    (0..=room).rev().find(|&n| b64(n) <= room).unwrap_or(0)
}

pub(super) fn check_write(bucket: &str, key: &str) -> S3Result<()> {
    check_bucket(bucket)?;
    check_key(key)?;
    check_storable(bucket, key)
}

pub(super) fn check_copy_source(src: &CopySource) -> S3Result<()> {
    match src {
        CopySource::Bucket { bucket, key, .. } => {
            check_bucket(bucket)?;
            check_key(key)
        }
        _ => Err(s3_error!(
            NotImplemented,
            "only bucket copy sources are supported"
        )),
    }
}

/// Who asked and from where, captured before the request is consumed.
pub(super) struct RequestCtx {
    pub(super) principal_id: String,
    pub(super) source_ip: String,
}

impl RequestCtx {
    fn of<T>(req: &S3Request<T>) -> Self {
        RequestCtx {
            principal_id: req
                .credentials
                .as_ref()
                .map(|c| c.access_key.clone())
                .unwrap_or_else(|| "anonymous".to_owned()),
            source_ip: req
                .extensions
                .get::<PeerAddr>()
                .map(|p| p.0.ip().to_string())
                .unwrap_or_default(),
        }
    }
}

impl GuardedFs {
    /// s3s-fs renames new files into place without fsync: flush the object,
    /// every folder from its parent up to the bucket, its sidecars and the
    /// root, and report its size.
    async fn make_durable(&self, bucket: &str, key: &str) -> S3Result<u64> {
        let (root, bucket, key) = (self.root.clone(), bucket.to_owned(), key.to_owned());
        let res = tokio::task::spawn_blocking(move || fsync_object(&root, &bucket, &key)).await;
        match res {
            Ok(Ok(size)) => Ok(size),
            Ok(Err(e)) => Err(s3_error!(
                e,
                InternalError,
                "could not make the object durable"
            )),
            Err(e) => Err(s3_error!(
                e,
                InternalError,
                "could not make the object durable"
            )),
        }
    }

    fn emit(
        &self,
        event_name: &'static str,
        ctx: RequestCtx,
        bucket: String,
        key: String,
        size: u64,
        etag: Option<String>,
    ) {
        let Some(events) = &self.events else { return };
        let notification = S3EventNotification::object_created(ObjectCreatedEvent {
            event_name,
            region: events.region.clone(),
            time: chrono::Utc::now(),
            bucket,
            key,
            size,
            etag,
            sequencer: events.next_sequencer(),
            principal_id: ctx.principal_id,
            source_ip: ctx.source_ip,
            request_id: uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        });
        events.notifier.send(notification);
    }
}

pub(super) fn fsync_object(root: &Path, bucket: &str, key: &str) -> std::io::Result<u64> {
    let bucket_dir = root.join(bucket);
    let path = bucket_dir.join(key);
    let file = std::fs::File::open(&path)?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if !d.starts_with(&bucket_dir) {
            break;
        }
        std::fs::File::open(d)?.sync_all()?;
        dir = d.parent();
    }
    // Content-Type, Cache-Control and the ETag live in s3s-fs's sidecars.
    for sidecar in sidecar_paths(root, bucket, key) {
        match std::fs::File::open(&sidecar) {
            Ok(f) => f.sync_all()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    std::fs::File::open(root)?.sync_all()?;
    Ok(size)
}

/// Where s3s-fs 0.14 keeps an object's attributes and ETag (see its `fs.rs`).
pub(super) fn sidecar_paths(root: &Path, bucket: &str, key: &str) -> [PathBuf; 2] {
    let stem = format!(
        ".bucket-{}.object-{}",
        base64url_nopad(bucket.as_bytes()),
        base64url_nopad(key.as_bytes())
    );
    [
        root.join(format!("{stem}.metadata.json")),
        root.join(format!("{stem}.internal.json")),
    ]
}

pub(super) fn base64url_nopad(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[async_trait::async_trait]
impl S3 for GuardedFs {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        check_write(&bucket, &key)?;
        let ctx = RequestCtx::of(&req);
        let resp = self.inner.put_object(req).await?;
        let size = self.make_durable(&bucket, &key).await?;
        let etag = resp.output.e_tag.as_ref().map(|t| t.value().to_owned());
        self.emit(EVENT_PUT, ctx, bucket, key, size, etag);
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        check_write(&bucket, &key)?;
        let ctx = RequestCtx::of(&req);
        let mut resp = self.inner.complete_multipart_upload(req).await?;
        // s3s-fs has already written the object; its future only builds the
        // reply. Resolve it here so fsync and the event come before the answer.
        if let Some(fut) = resp.output.future.take() {
            resp.output = fut.await?;
        }
        let size = self.make_durable(&bucket, &key).await?;
        let etag = resp.output.e_tag.as_ref().map(|t| t.value().to_owned());
        self.emit(EVENT_COMPLETE_MULTIPART, ctx, bucket, key, size, etag);
        Ok(resp)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        check_write(&bucket, &key)?;
        check_copy_source(&req.input.copy_source)?;
        let ctx = RequestCtx::of(&req);
        let resp = self.inner.copy_object(req).await?;
        let size = self.make_durable(&bucket, &key).await?;
        let etag = resp
            .output
            .copy_object_result
            .as_ref()
            .and_then(|r| r.e_tag.as_ref())
            .map(|t| t.value().to_owned());
        self.emit(EVENT_COPY, ctx, bucket, key, size, etag);
        Ok(resp)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        check_bucket(&req.input.bucket)?;
        check_key(&req.input.key)?;
        self.inner.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        check_bucket(&req.input.bucket)?;
        check_key(&req.input.key)?;
        self.inner.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        check_bucket(&req.input.bucket)?;
        check_key(&req.input.key)?;
        self.inner.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        check_bucket(&req.input.bucket)?;
        for object in &req.input.delete.objects {
            check_key(&object.key)?;
        }
        self.inner.delete_objects(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        check_bucket(&req.input.bucket)?;
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        check_bucket(&req.input.bucket)?;
        self.inner.list_objects_v2(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        check_bucket(&req.input.bucket)?;
        self.inner.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        check_bucket(&req.input.bucket)?;
        self.inner.head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        check_bucket(&req.input.bucket)?;
        self.inner.get_bucket_location(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        check_bucket(&req.input.bucket)?;
        // s3s-fs removes the whole folder; S3 refuses a bucket that has objects.
        let dir = self.root.join(&req.input.bucket);
        if let Ok(mut entries) = tokio::fs::read_dir(&dir).await {
            if matches!(entries.next_entry().await, Ok(Some(_))) {
                return Err(s3_error!(BucketNotEmpty));
            }
        }
        self.inner.delete_bucket(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        check_write(&req.input.bucket, &req.input.key)?;
        self.inner.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        check_write(&req.input.bucket, &req.input.key)?;
        self.inner.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        check_write(&req.input.bucket, &req.input.key)?;
        check_copy_source(&req.input.copy_source)?;
        self.inner.upload_part_copy(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        check_bucket(&req.input.bucket)?;
        check_key(&req.input.key)?;
        self.inner.abort_multipart_upload(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        check_bucket(&req.input.bucket)?;
        check_key(&req.input.key)?;
        self.inner.list_parts(req).await
    }
}
