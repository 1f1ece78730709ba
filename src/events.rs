//! Object-storage events: every envelope senders use, reduced to one
//! [`ObjectEvent`], and what an event for the masters bucket does.
//!
//! Shapes accepted (a JSON array of any of them works too):
//! - S3 event notifications, `{"Records": [...]}` (AWS, the embedded store);
//! - the same inside an SNS envelope (`Type: Notification`, `Message` is the
//!   JSON text), and SNS `SubscriptionConfirmation`s, confirmed only for
//!   topics on `events.sns_topic_allowlist`; every SNS message must carry a
//!   valid signature ([`sns`]);
//! - EventBridge `Object Created` events (`detail.bucket.name`,
//!   `detail.object.key`, `etag`, `version-id`, `sequencer`);
//! - MinIO webhooks (`EventName`, `Key: "bucket/key"`, `Records`).
//!
//! Keys are URL-decoded (`+` is a space) in every shape.
//!
//! Delivery is at least once and unordered, so each event is recorded under
//! (bucket, key, versionId or ETag or sequencer) in the same transaction as
//! its effect: a repeat finds it and does nothing, and an event older (by
//! sequencer) than one already handled for the key does nothing. On top of
//! that every effect looks at the object itself (HEAD), so even an event
//! with no identity cannot make a variation redo a master it already took in.

use crate::config::Settings;
use crate::domain::{AssetId, CallbackUrl, CampaignId};
use crate::jobs::model::{Brief, Source};
use crate::jobs::store::s3::{self as db, EventFreshness, NewUpload};
use crate::jobs::store::{now_ms, Asset, Store};
use crate::jobs::State;
use crate::reason::ReasonCode;
use crate::storage::event::{decode_key, S3EventNotification};
use crate::storage::{ObjectKey, ObjectMeta, ObjectStore};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;

pub mod sns;

/// Prefix under which masters live (generated and uploaded by hand).
pub const MASTERS_PREFIX: &str = "masters/";
/// Object metadata naming the delivery profile of a master uploaded by hand.
pub const META_PROFILE: &str = "reelay-profile";
/// Object metadata naming where to send callbacks for a master uploaded by hand.
pub const META_CALLBACK_URL: &str = "reelay-callback-url";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    S3,
    Sns,
    EventBridge,
    Minio,
}

/// One object-created (or other) event, whatever envelope it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEvent {
    pub shape: Shape,
    /// `ObjectCreated:Put`, `s3:ObjectCreated:Put`, `Object Created`, ...
    pub event_name: String,
    pub bucket: String,
    /// Decoded.
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: Option<String>,
    pub sequencer: Option<String>,
    pub size: Option<u64>,
}

impl ObjectEvent {
    pub fn is_object_created(&self) -> bool {
        let n = self
            .event_name
            .strip_prefix("s3:")
            .unwrap_or(&self.event_name);
        n.starts_with("ObjectCreated:") || n == "Object Created"
    }

    /// What makes two deliveries the same event: versionId, else ETag, else
    /// sequencer. `None` when the sender gave none of them.
    pub fn identity(&self) -> Option<String> {
        let nonempty =
            |s: &Option<String>| s.as_deref().filter(|v| !v.is_empty()).map(str::to_string);
        nonempty(&self.version_id)
            .map(|v| format!("v:{v}"))
            .or_else(|| nonempty(&self.etag).map(|e| format!("e:{e}")))
            .or_else(|| nonempty(&self.sequencer).map(|s| format!("s:{}", s.to_ascii_uppercase())))
    }
}

/// An SNS subscription to confirm (or not).
#[derive(Debug, Clone, PartialEq)]
pub struct SnsConfirmation {
    pub topic_arn: String,
    pub subscribe_url: String,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub events: Vec<ObjectEvent>,
    pub confirmations: Vec<SnsConfirmation>,
    /// Messages understood but carrying nothing to do (test events,
    /// unsubscribe confirmations, other EventBridge detail types).
    pub ignored: usize,
    /// Every SNS envelope met, as sent: each must pass [`sns::Verifier`]
    /// before anything it carries is acted on.
    pub sns: Vec<Value>,
}

/// Reads any supported envelope. Errors name what was wrong.
pub fn parse(body: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Parsed::default();
    parse_value(&v, &mut out, 0)?;
    Ok(out)
}

fn text(v: &Value, path: &str) -> Option<String> {
    v.pointer(path).and_then(Value::as_str).map(str::to_string)
}

fn parse_value(v: &Value, out: &mut Parsed, depth: usize) -> Result<(), String> {
    if depth > 3 {
        return Err("envelopes nested too deep".into());
    }
    if let Some(items) = v.as_array() {
        for item in items {
            parse_value(item, out, depth + 1)?;
        }
        return Ok(());
    }
    let Some(obj) = v.as_object() else {
        return Err("must be a JSON object or array".into());
    };
    // SNS: {"Type": ..., "TopicArn": ..., "Message": "..."}
    if let (Some(kind), Some(topic)) = (text(v, "/Type"), text(v, "/TopicArn")) {
        out.sns.push(v.clone());
        match kind.as_str() {
            "Notification" => {
                let message = text(v, "/Message").ok_or("SNS Notification without Message")?;
                let inner: Value = serde_json::from_str(&message)
                    .map_err(|e| format!("SNS Message is not JSON: {e}"))?;
                let before = out.events.len();
                parse_value(&inner, out, depth + 1)?;
                for e in &mut out.events[before..] {
                    e.shape = Shape::Sns;
                }
            }
            "SubscriptionConfirmation" => out.confirmations.push(SnsConfirmation {
                topic_arn: topic,
                subscribe_url: text(v, "/SubscribeURL")
                    .ok_or("SubscriptionConfirmation without SubscribeURL")?,
            }),
            _ => out.ignored += 1,
        }
        return Ok(());
    }
    // EventBridge: {"detail-type": "Object Created", "source": "aws.s3", "detail": {...}}
    if let Some(detail_type) = text(v, "/detail-type") {
        if detail_type != "Object Created" {
            out.ignored += 1;
            return Ok(());
        }
        let bucket =
            text(v, "/detail/bucket/name").ok_or("EventBridge event without detail.bucket.name")?;
        let raw_key =
            text(v, "/detail/object/key").ok_or("EventBridge event without detail.object.key")?;
        out.events.push(ObjectEvent {
            shape: Shape::EventBridge,
            event_name: detail_type,
            bucket,
            key: decode_key(&raw_key).map_err(|e| format!("key is not UTF-8: {e}"))?,
            version_id: text(v, "/detail/object/version-id"),
            etag: text(v, "/detail/object/etag").map(|e| e.trim_matches('"').to_string()),
            sequencer: text(v, "/detail/object/sequencer"),
            size: v.pointer("/detail/object/size").and_then(Value::as_u64),
        });
        return Ok(());
    }
    // S3 notification, or MinIO's webhook (which adds EventName and Key).
    let minio = obj.contains_key("EventName");
    if obj.contains_key("Records") {
        let n: S3EventNotification = serde_json::from_value(v.clone())
            .map_err(|e| format!("Records are not S3 event records: {e}"))?;
        for r in n.records {
            out.events.push(ObjectEvent {
                shape: if minio { Shape::Minio } else { Shape::S3 },
                key: r
                    .s3
                    .object
                    .decode_key()
                    .map_err(|e| format!("key is not UTF-8: {e}"))?,
                event_name: r.event_name,
                bucket: r.s3.bucket.name,
                version_id: r.s3.object.version_id,
                etag: r.s3.object.e_tag.map(|e| e.trim_matches('"').to_string()),
                sequencer: r.s3.object.sequencer,
                size: r.s3.object.size,
            });
        }
        return Ok(());
    }
    if minio {
        // A MinIO event without Records: only "bucket/key" to go on.
        let name = text(v, "/EventName").unwrap_or_default();
        let full = text(v, "/Key").ok_or("MinIO event without Key")?;
        let full = decode_key(&full).map_err(|e| format!("key is not UTF-8: {e}"))?;
        let (bucket, key) = full.split_once('/').ok_or("MinIO Key must be bucket/key")?;
        out.events.push(ObjectEvent {
            shape: Shape::Minio,
            event_name: name,
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: None,
            etag: None,
            sequencer: None,
            size: None,
        });
        return Ok(());
    }
    if text(v, "/Event").as_deref() == Some("s3:TestEvent") {
        out.ignored += 1;
        return Ok(());
    }
    Err("not an S3, SNS, EventBridge or MinIO event".into())
}

/// What handling one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not an object creation in the masters bucket.
    Ignored,
    Duplicate,
    Stale,
    /// The object is no longer there (or its key is unusable).
    Gone,
    /// A variation waiting for its master was made runnable.
    Nudged,
    /// The variation already took in this very object.
    Unchanged,
    /// A new master version: the variation runs its arrival checks again.
    Restarted,
    /// A write to a generated master's key after its master was taken in, or
    /// to the key of a task that was replaced: recorded, nothing else.
    Refused,
    /// A master uploaded by hand became a new asset.
    Created,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
            Outcome::Gone => "gone",
            Outcome::Nudged => "nudged",
            Outcome::Unchanged => "unchanged",
            Outcome::Restarted => "restarted",
            Outcome::Refused => "refused",
            Outcome::Created => "created",
        }
    }

    /// The event named a known variation's master.
    pub fn matched(self) -> bool {
        matches!(
            self,
            Outcome::Nudged | Outcome::Unchanged | Outcome::Restarted | Outcome::Refused
        )
    }
}

/// Applies object events to the job store.
#[derive(Clone)]
pub struct Intake {
    pub store: Store,
    pub objects: ObjectStore,
    pub settings: Arc<Settings>,
    pub wake: Arc<Notify>,
}

/// `masters/{campaign}/...` with a usable campaign: the campaign.
fn upload_campaign(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(MASTERS_PREFIX)?;
    let (campaign, tail) = rest.split_once('/')?;
    (CampaignId::parse(campaign).is_ok() && !tail.is_empty() && !tail.ends_with('/'))
        .then_some(campaign)
}

impl Intake {
    /// Handles one event: at most one effect, whatever the number of deliveries.
    pub async fn handle(&self, ev: &ObjectEvent) -> anyhow::Result<Outcome> {
        if !ev.is_object_created()
            || ev.bucket != self.settings.storage.masters_bucket
            || !ev.key.starts_with(MASTERS_PREFIX)
        {
            return Ok(Outcome::Ignored);
        }
        let Ok(key) = ObjectKey::parse(&ev.key) else {
            tracing::warn!(key = %ev.key, "S3 event for a key reelay cannot use; ignored");
            return Ok(Outcome::Gone);
        };
        // Read the object before taking the write lock; the decision below
        // is made on what is there now, not on what the event says.
        let head = self.objects.head(&ev.bucket, &key).await?;
        let identity = ev.identity();
        let mut tx = self.store.begin_immediate().await?;
        if let Some(id) = &identity {
            match db::record_event(&mut tx, &ev.bucket, &ev.key, id, ev.sequencer.as_deref())
                .await?
            {
                EventFreshness::New => {}
                EventFreshness::Duplicate => {
                    tx.commit().await?;
                    return Ok(Outcome::Duplicate);
                }
                EventFreshness::Stale => {
                    tx.commit().await?;
                    return Ok(Outcome::Stale);
                }
            }
        }
        let outcome = self.apply(&mut tx, ev, head.as_ref()).await?;
        if let Some(id) = &identity {
            db::set_outcome(&mut tx, &ev.bucket, &ev.key, id, outcome.as_str()).await?;
        }
        tx.commit().await?;
        if matches!(
            outcome,
            Outcome::Nudged | Outcome::Restarted | Outcome::Created
        ) {
            self.wake.notify_waiters();
        }
        tracing::info!(key = %ev.key, shape = ?ev.shape, outcome = outcome.as_str(), "S3 event");
        Ok(outcome)
    }

    async fn apply(
        &self,
        tx: &mut crate::jobs::store::Tx,
        ev: &ObjectEvent,
        head: Option<&ObjectMeta>,
    ) -> anyhow::Result<Outcome> {
        if let Some(v) = db::variation_by_master_key(tx, &ev.key).await? {
            let state = v.state;
            if matches!(state, State::Requested) || state.awaits_generator() {
                db::nudge(tx, &v.id).await?;
                return Ok(Outcome::Nudged);
            }
            if matches!(state, State::Expired | State::Cancelled) {
                return Ok(Outcome::Ignored);
            }
            let Some(meta) = head else {
                return Ok(Outcome::Gone);
            };
            let etag = meta.etag.as_deref().map(|e| e.trim_matches('"'));
            if etag.is_some() && etag == v.master_etag.as_deref() {
                return Ok(Outcome::Unchanged);
            }
            let asset = db::asset(tx, &v.asset_id).await?;
            if !asset.as_ref().is_some_and(|a| a.is_upload()) {
                // A generated master's URL delivers one master, once.
                let note = format!(
                    "a later write to the master's upload key was ignored (etag {}): the master taken in stays; a new version goes live only through reprocess or an upload by hand",
                    etag.unwrap_or("unknown")
                );
                db::note_ignored_write(tx, &v.id, state, &note).await?;
                tracing::warn!(key = %ev.key, variation = %v.id, "write to a generated master's key after it was taken in; ignored");
                return Ok(Outcome::Refused);
            }
            if let Some(asset) = asset {
                if asset.is_upload() {
                    match meta.metadata.get(META_PROFILE) {
                        Some(p) if self.settings.profiles.contains_key(p) => {
                            db::set_asset_profile(tx, &asset.id, p).await?
                        }
                        Some(p) => {
                            tracing::warn!(profile = %p, asset = %asset.id, "unknown profile in the new master's metadata; keeping {}", asset.profile)
                        }
                        None => {}
                    }
                }
            }
            let note = format!(
                "a new master version landed (etag {}); checking it again",
                etag.unwrap_or("unknown")
            );
            crate::jobs::store::restart_in(tx, &v.id, State::Submitted, &note).await?;
            return Ok(Outcome::Restarted);
        }
        if let Some(generated) = crate::domain::master_key::parse(&ev.key) {
            if let Some(v) = db::variation(tx, generated.variation.as_str()).await? {
                // The key of a task this variation no longer runs (it was
                // resubmitted): a late upload to the old URL.
                let note = format!(
                    "an upload to the URL of replaced task {} was ignored",
                    generated.task
                );
                db::note_ignored_write(tx, &v.id, v.state, &note).await?;
                tracing::warn!(key = %ev.key, variation = %v.id, "upload to a replaced task's key; ignored");
                return Ok(Outcome::Refused);
            }
        }
        let Some(campaign) = upload_campaign(&ev.key) else {
            return Ok(Outcome::Ignored);
        };
        let Some(meta) = head else {
            return Ok(Outcome::Gone);
        };
        let asset_id = AssetId::generate();
        let id = asset_id.to_string();
        let profile = meta
            .metadata
            .get(META_PROFILE)
            .cloned()
            .unwrap_or_else(|| "default".into());
        let known: Vec<&str> = self.settings.profiles.keys().map(String::as_str).collect();
        let rejected = (!self.settings.profiles.contains_key(&profile)).then(|| {
            (
                ReasonCode::UnknownProfile,
                format!(
                    "the master's {META_PROFILE} metadata names profile {profile:?}; known: {}",
                    known.join(", ")
                ),
            )
        });
        let guard = crate::outbound::Guard::new(&self.settings.outbound)?;
        let callback_url = match meta.metadata.get(META_CALLBACK_URL) {
            Some(u) if CallbackUrl::parse(u).is_ok() && guard.check_url(u).is_ok() => {
                Some(u.clone())
            }
            Some(_) => {
                tracing::warn!(key = %ev.key, "ignoring a {META_CALLBACK_URL} that is not an http(s) URL of a public address");
                None
            }
            None => None,
        };
        let upload = NewUpload {
            asset: Asset {
                id: id.clone(),
                campaign: campaign.to_string(),
                profile,
                brief: Brief::Upload {
                    output_quality: self.settings.uploads.output_quality,
                },
                callback_url,
                ttl_secs: self.settings.policy.default_ttl_secs as i64,
                created_at: now_ms(),
                qc: None,
                source: Source::Upload,
                destinations: Vec::new(),
                vast: Default::default(),
                captions: Vec::new(),
            },
            variation_id: asset_id.variation(0).as_str().to_string(),
            master_key: ev.key.clone(),
            rejected,
        };
        db::create_upload(tx, &upload).await?;
        tracing::info!(asset = %id, key = %ev.key, "master uploaded by hand became a new asset");
        Ok(Outcome::Created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_envelope_gives_the_same_event() {
        let record = serde_json::json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "masters/c/a+b%2Bc.mp4", "size": 5,
                   "eTag": "abc", "versionId": "v1", "sequencer": "0A"}}
        });
        let s3 = serde_json::json!({"Records": [record]});
        let sns = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": s3.to_string()
        });
        let eb = serde_json::json!({
            "version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "masters/c/a+b%2Bc.mp4", "size": 5,
                       "etag": "abc", "version-id": "v1", "sequencer": "0A"}}
        });
        let mut minio_record = record.clone();
        minio_record["eventName"] = "s3:ObjectCreated:Put".into();
        let minio = serde_json::json!({"EventName": "s3:ObjectCreated:Put", "Key": "b/masters/c/a b+c.mp4",
                                       "Records": [minio_record]});
        for (body, shape) in [
            (s3, Shape::S3),
            (sns, Shape::Sns),
            (eb, Shape::EventBridge),
            (minio, Shape::Minio),
        ] {
            let p = parse(body.to_string().as_bytes()).unwrap();
            assert_eq!(p.events.len(), 1, "{shape:?}");
            let e = &p.events[0];
            assert_eq!(e.shape, shape);
            assert!(e.is_object_created(), "{shape:?}");
            assert_eq!(e.bucket, "b");
            assert_eq!(e.key, "masters/c/a b+c.mp4", "{shape:?}");
            assert_eq!(e.identity().as_deref(), Some("v:v1"), "{shape:?}");
            assert_eq!(e.sequencer.as_deref(), Some("0A"));
            assert_eq!(e.size, Some(5));
        }
    }

    #[test]
    fn identity_falls_back_from_version_to_etag_to_sequencer() {
        let mut e = ObjectEvent {
            shape: Shape::S3,
            event_name: "ObjectCreated:Put".into(),
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            etag: Some("\"e\"".trim_matches('"').into()),
            sequencer: Some("0a".into()),
            size: None,
        };
        assert_eq!(e.identity().as_deref(), Some("e:e"));
        e.etag = None;
        assert_eq!(e.identity().as_deref(), Some("s:0A"));
        e.sequencer = None;
        assert_eq!(e.identity(), None);
    }

    #[test]
    fn sns_confirmations_test_events_and_other_detail_types_are_recognised() {
        let confirm = serde_json::json!({"Type": "SubscriptionConfirmation", "TopicArn": "arn:t",
                                         "SubscribeURL": "https://sns.example/confirm", "Token": "x"});
        let p = parse(confirm.to_string().as_bytes()).unwrap();
        assert_eq!(
            p.confirmations,
            vec![SnsConfirmation {
                topic_arn: "arn:t".into(),
                subscribe_url: "https://sns.example/confirm".into()
            }]
        );
        let test = serde_json::json!({"Service": "Amazon S3", "Event": "s3:TestEvent"});
        assert_eq!(parse(test.to_string().as_bytes()).unwrap().ignored, 1);
        let deleted = serde_json::json!({"detail-type": "Object Deleted", "detail": {}});
        assert_eq!(parse(deleted.to_string().as_bytes()).unwrap().ignored, 1);
        let batch = serde_json::json!([test, deleted]);
        assert_eq!(parse(batch.to_string().as_bytes()).unwrap().ignored, 2);
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        for (body, needle) in [
            ("not json", "not JSON"),
            ("42", "object or array"),
            (r#"{"hello": 1}"#, "not an S3"),
            (
                r#"{"Type": "Notification", "TopicArn": "t", "Message": "nope"}"#,
                "SNS Message",
            ),
            (
                r#"{"detail-type": "Object Created", "detail": {}}"#,
                "bucket.name",
            ),
        ] {
            let err = parse(body.as_bytes()).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn only_keys_under_a_campaign_folder_make_uploads() {
        assert_eq!(upload_campaign("masters/spring/hero.mp4"), Some("spring"));
        assert_eq!(upload_campaign("masters/spring/a/b.mov"), Some("spring"));
        assert_eq!(upload_campaign("masters/hero.mp4"), None);
        assert_eq!(upload_campaign("masters/Spring/hero.mp4"), None);
        assert_eq!(upload_campaign("masters/spring/"), None);
        assert_eq!(upload_campaign("other/spring/hero.mp4"), None);
    }
}
