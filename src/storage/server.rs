//! The embedded S3-compatible server: s3s-fs behind real SigV4, wrapped by
//! [`GuardedFs`], which adds what s3s-fs lacks: key checks (s3s-fs maps keys
//! straight onto paths), fsync before answering, and event notifications.

use super::event::{
    ObjectCreatedEvent, S3EventNotification, EVENT_COMPLETE_MULTIPART, EVENT_COPY, EVENT_PUT,
};
use super::keys::{BucketName, ObjectKey};
use super::StorageError;
use crate::backoff::Backoff;
use crate::secret::Secret;

use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};

use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Where the embedded server POSTs its S3 event notifications.
#[derive(Debug, Clone)]
pub struct NotificationTarget {
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Secret,
}

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Data folder; created if missing. One server per folder.
    pub root: PathBuf,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub region: String,
    /// Created (as folders) if missing.
    pub buckets: Vec<String>,
    pub notifications: Option<NotificationTarget>,
}

/// A running embedded server. Dropping it stops accepting and aborts open
/// connections; [`EmbeddedS3::shutdown`] lets in-flight requests finish first.
#[derive(Debug)]
pub struct EmbeddedS3 {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmbeddedS3 {
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets open requests finish (up to 10 s), then returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Peer address of the connection, put in each request's extensions so the
/// event can name `sourceIPAddress`.
#[derive(Debug, Clone, Copy)]
struct PeerAddr(SocketAddr);

/// Open connections get this long to finish on shutdown. The embedded store
/// serves local clients only, so this bound is never tuned.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);
/// After a failed accept (typically out of file descriptors), wait before the
/// next so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// One event POST; the receiver is reelay's own API.
const EVENT_POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the server on `host:port` and returns once it is accepting.
pub async fn start_embedded(opts: EmbeddedOptions) -> Result<EmbeddedS3, StorageError> {
    if opts.access_key_id.is_empty() || opts.secret_access_key.is_empty() {
        // s3s without credentials would accept anonymous requests.
        return Err(StorageError::Config(
            "the embedded S3 server needs an access key id and a secret access key".into(),
        ));
    }
    tokio::fs::create_dir_all(&opts.root)
        .await
        .map_err(StorageError::io("create embedded storage root"))?;
    for bucket in &opts.buckets {
        BucketName::parse(bucket)?;
        tokio::fs::create_dir_all(opts.root.join(bucket))
            .await
            .map_err(StorageError::io("create embedded bucket folder"))?;
    }
    let root = tokio::fs::canonicalize(&opts.root)
        .await
        .map_err(StorageError::io("resolve embedded storage root"))?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| StorageError::Backend {
        op: "start embedded server",
        message: format!("{e:?}"),
    })?;

    let guarded = GuardedFs {
        inner: fs,
        root,
        events: opts.notifications.map(|target| EventEmitter {
            notifier: Notifier::new(target),
            region: opts.region.clone(),
            last_sequencer: AtomicU64::new(0),
        }),
    };
    let service = {
        let mut b = S3ServiceBuilder::new(guarded);
        b.set_auth(SimpleAuth::from_single(
            opts.access_key_id.clone(),
            opts.secret_access_key.expose().to_owned(),
        ));
        b.build()
    };

    let listener = TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(StorageError::io("bind embedded S3 server"))?;
    let addr = listener
        .local_addr()
        .map_err(StorageError::io("read embedded S3 server address"))?;
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, service, stop_rx));
    tracing::info!(%addr, "embedded S3 server listening");
    Ok(EmbeddedS3 {
        addr,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    service: s3s::service::S3Service,
    mut stop: watch::Receiver<bool>,
) {
    // Owned here so that aborting this task (on drop) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "embedded S3 accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                conns.spawn(serve_connection(stream, peer, service.clone(), stop.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACEFUL_SHUTDOWN, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("embedded S3 connections still open after shutdown grace period; aborting");
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    service: s3s::service::S3Service,
    mut stop: watch::Receiver<bool>,
) {
    let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        hyper::service::Service::call(&service, req)
    });
    // HTTP/1.1 only: every client of this server (aws-sdk-s3, reqwest, the
    // generator) talks HTTP/1.1 over plain http.
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, %peer, "embedded S3 connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// `s3s::S3` over s3s-fs with key checks, fsync and event emission.
struct GuardedFs {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
    events: Option<EventEmitter>,
}

impl std::fmt::Debug for GuardedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedFs")
            .field("root", &self.root)
            .finish()
    }
}

fn check_bucket(bucket: &str) -> S3Result<()> {
    BucketName::parse(bucket)
        .map(drop)
        .map_err(|e| s3_error!(InvalidBucketName, "{e}"))
}

fn check_key(key: &str) -> S3Result<()> {
    ObjectKey::parse(key)
        .map(drop)
        .map_err(|e| s3_error!(InvalidArgument, "invalid object key: {e}"))
}

/// s3s-fs keeps per-object metadata in files named
/// `.bucket-<b64 bucket>.object-<b64 key>.upload-<uuid>.metadata.json`, so a
/// long key fails deep inside it with a 500; refuse it up front instead.
fn check_storable(bucket: &str, key: &str) -> S3Result<()> {
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

fn check_write(bucket: &str, key: &str) -> S3Result<()> {
    check_bucket(bucket)?;
    check_key(key)?;
    check_storable(bucket, key)
}

fn check_copy_source(src: &CopySource) -> S3Result<()> {
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
struct RequestCtx {
    principal_id: String,
    source_ip: String,
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

fn fsync_object(root: &Path, bucket: &str, key: &str) -> std::io::Result<u64> {
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
fn sidecar_paths(root: &Path, bucket: &str, key: &str) -> [PathBuf; 2] {
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

fn base64url_nopad(input: &[u8]) -> String {
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

struct EventEmitter {
    notifier: Notifier,
    region: String,
    last_sequencer: AtomicU64,
}

impl EventEmitter {
    /// Nanoseconds since the epoch, bumped to stay strictly increasing, as
    /// fixed-width hex so that string order matches numeric order.
    fn next_sequencer(&self) -> String {
        let now = chrono::Utc::now()
            .timestamp_nanos_opt()
            .map_or(0, |n| n.max(0) as u64);
        let prev = self
            .last_sequencer
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|v| v);
        format!("{:016X}", now.max(prev + 1))
    }
}

/// Retry schedule for event delivery.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    attempts: u32,
    backoff: Backoff,
}

/// Tries spread over about 80 s, so an event outlasts a restart of its
/// receiver, as a bucket notification would.
const DELIVERY_RETRY: RetryPolicy = RetryPolicy {
    attempts: 10,
    backoff: Backoff::doubling(Duration::from_millis(200), Duration::from_secs(30)),
};

/// POSTs events from background tasks so a slow or absent receiver never
/// delays the PUT that caused them. At least once, unordered, like S3.
#[derive(Clone)]
struct Notifier {
    client: reqwest::Client,
    target: Arc<NotificationTarget>,
    retry: RetryPolicy,
}

impl Notifier {
    fn new(target: NotificationTarget) -> Self {
        let client = reqwest::Client::builder()
            .timeout(EVENT_POST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Notifier {
            client,
            target: Arc::new(target),
            retry: DELIVERY_RETRY,
        }
    }

    fn send(&self, notification: S3EventNotification) {
        let body = match serde_json::to_vec(&notification) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "could not encode S3 event notification");
                return;
            }
        };
        let this = self.clone();
        tokio::spawn(async move { this.deliver(body).await });
    }

    async fn deliver(&self, body: Vec<u8>) {
        let mut last_error = String::new();
        for attempt in 1..=self.retry.attempts {
            let res = self
                .client
                .post(&self.target.url)
                .bearer_auth(self.target.bearer_token.expose())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => last_error = format!("HTTP {}", r.status()),
                Err(e) => last_error = e.without_url().to_string(),
            }
            tracing::debug!(attempt, error = %last_error, "S3 event delivery failed; retrying");
            if attempt < self.retry.attempts {
                tokio::time::sleep(self.retry.backoff.delay(attempt - 1)).await;
            }
        }
        tracing::warn!(
            attempts = self.retry.attempts,
            error = %last_error,
            "giving up delivering an S3 event notification"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_increase_strictly_and_sort_as_strings() {
        let e = EventEmitter {
            notifier: Notifier::new(NotificationTarget {
                url: "http://127.0.0.1:9/".into(),
                bearer_token: Secret::new("t"),
            }),
            region: "us-east-1".into(),
            last_sequencer: AtomicU64::new(0),
        };
        let seqs: Vec<String> = (0..1000).map(|_| e.next_sequencer()).collect();
        for w in seqs.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
            assert_eq!(w[0].len(), 16);
        }
    }

    #[test]
    fn base64url_matches_known_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("\u{fb}\u{ff}", "w7vDvw"),
        ] {
            assert_eq!(base64url_nopad(raw.as_bytes()), enc, "{raw:?}");
        }
    }

    #[tokio::test]
    async fn sidecar_paths_match_where_s3s_fs_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("bkt")).unwrap();
        let mut input = PutObjectInput::builder()
            .bucket("bkt".into())
            .key("a/b ~?.mp4".into())
            .build()
            .unwrap();
        input.body = Some(StreamingBlob::from(s3s::Body::from("hi".to_owned())));
        input.content_type = Some("video/mp4".into());
        let req = S3Request {
            input,
            method: http::Method::PUT,
            uri: http::Uri::from_static("/"),
            headers: Default::default(),
            extensions: Default::default(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        };
        fs.put_object(req).await.unwrap();
        let root = dir.path().canonicalize().unwrap();
        for p in sidecar_paths(&root, "bkt", "a/b ~?.mp4") {
            assert!(p.exists(), "{p:?} missing: did the s3s-fs layout change?");
        }
    }

    #[test]
    fn long_keys_are_refused_before_s3s_fs_fails_on_them() {
        assert!(check_storable("reelay-masters", &"k".repeat(100)).is_ok());
        let err = check_storable("reelay-masters", &"k".repeat(200)).unwrap_err();
        assert_eq!(*err.code(), s3s::S3ErrorCode::KeyTooLongError);
    }

    #[test]
    fn the_key_limit_is_exact_for_the_sidecar_name() {
        for bucket in ["reelay-cdn", "reelay-masters", "b"] {
            let max = max_key_bytes(bucket);
            assert!(check_storable(bucket, &"k".repeat(max)).is_ok(), "{bucket}");
            assert!(
                check_storable(bucket, &"k".repeat(max + 1)).is_err(),
                "{bucket}"
            );
            // The sidecar file name at the limit is a legal file name.
            let b64 = |n: usize| (n * 4).div_ceil(3);
            let name = 8 + b64(bucket.len()) + 8 + b64(max) + 8 + 36 + 14;
            assert!(name <= 255, "{bucket}: {name}");
        }
        assert_eq!(max_key_bytes("reelay-cdn"), 125);
    }
}
