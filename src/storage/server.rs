//! The embedded S3-compatible server: s3s-fs behind real SigV4, wrapped by
//! [`GuardedFs`], which adds what s3s-fs lacks: key checks (s3s-fs maps keys
//! straight onto paths), fsync before answering, and event notifications.
//! [`access::Access`] decides who may do what: a presigned URL only PUTs
//! into the masters bucket, and reelay's buckets are never deleted.

mod access;
mod events;
mod guard;

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

use events::{EventEmitter, Notifier};
pub use guard::max_key_bytes;
use guard::GuardedFs;

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
    /// Created (as folders) if missing; never deleted through S3.
    pub buckets: Vec<String>,
    /// The one bucket presigned PUT URLs may write (the masters bucket).
    /// `None`: presigned requests are refused.
    pub upload_bucket: Option<String>,
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
        b.set_access(access::Access {
            upload_bucket: opts.upload_bucket.clone(),
            protected: opts.buckets.clone(),
        });
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

#[cfg(test)]
mod tests;
