//! S3 event notifications in AWS's JSON shape.
//!
//! The embedded server emits these; whoever receives S3 events (AWS, MinIO,
//! the embedded server) can parse them with the same types. Parsing is lenient:
//! every field but the key has a default, since senders differ in what they fill.

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// AWS's event name for a single PUT.
pub const EVENT_PUT: &str = "ObjectCreated:Put";
/// AWS's event name for a completed multipart upload.
pub const EVENT_COMPLETE_MULTIPART: &str = "ObjectCreated:CompleteMultipartUpload";
/// AWS's event name for a server-side copy.
pub const EVENT_COPY: &str = "ObjectCreated:Copy";

/// Body of an S3 event notification: `{"Records": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3EventNotification {
    /// Absent in `s3:TestEvent` messages, hence the default.
    #[serde(rename = "Records", default)]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3EventRecord {
    pub event_version: String,
    pub event_source: String,
    pub aws_region: String,
    /// RFC 3339, as sent (kept as text: senders vary in precision).
    pub event_time: String,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, ...
    /// (MinIO prefixes these with `s3:`).
    pub event_name: String,
    pub user_identity: Identity,
    pub request_parameters: RequestParameters,
    pub response_elements: BTreeMap<String, String>,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Identity {
    pub principal_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestParameters {
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3Entity {
    pub s3_schema_version: String,
    pub configuration_id: String,
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3Bucket {
    pub name: String,
    pub owner_identity: Identity,
    pub arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3Object {
    /// URL-encoded as AWS sends it (`+` is a space): use [`S3Object::decode_key`].
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Without quotes, as AWS sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Hex; orders events for the same key only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

impl S3Object {
    /// The key as stored: URL-decoded, `+` read as a space.
    pub fn decode_key(&self) -> Result<String, std::str::Utf8Error> {
        decode_key(&self.key)
    }
}

impl S3EventRecord {
    /// True for every `ObjectCreated:*` event, AWS or MinIO spelling.
    pub fn is_object_created(&self) -> bool {
        let name = self
            .event_name
            .strip_prefix("s3:")
            .unwrap_or(&self.event_name);
        name.starts_with("ObjectCreated:")
    }
}

/// Like Java's `URLEncoder` (which AWS's event keys follow), but keeping `/`.
const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*')
    .remove(b'/');

/// Encodes a key the way AWS puts it in an event: spaces as `+`.
pub fn encode_key(key: &str) -> String {
    // '%' itself is encoded, so "%20" in the output can only come from a space.
    utf8_percent_encode(key, KEY_ENCODE_SET)
        .to_string()
        .replace("%20", "+")
}

/// Decodes an event key: `+` is a space, then percent-decoding.
pub fn decode_key(encoded: &str) -> Result<String, std::str::Utf8Error> {
    let plus_as_space = encoded.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
}

/// What the embedded server knows about a new object.
#[derive(Debug, Clone)]
pub struct ObjectCreatedEvent {
    pub event_name: &'static str,
    pub region: String,
    pub time: DateTime<Utc>,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// With or without quotes; stored without.
    pub etag: Option<String>,
    pub sequencer: String,
    pub principal_id: String,
    pub source_ip: String,
    pub request_id: String,
}

impl S3EventNotification {
    pub fn object_created(e: ObjectCreatedEvent) -> Self {
        let mut response_elements = BTreeMap::new();
        response_elements.insert("x-amz-request-id".to_owned(), e.request_id.clone());
        response_elements.insert("x-amz-id-2".to_owned(), e.request_id);
        let record = S3EventRecord {
            event_version: "2.1".to_owned(),
            event_source: "aws:s3".to_owned(),
            aws_region: e.region,
            event_time: e.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            event_name: e.event_name.to_owned(),
            user_identity: Identity {
                principal_id: e.principal_id.clone(),
            },
            request_parameters: RequestParameters {
                source_ip_address: e.source_ip,
            },
            response_elements,
            s3: S3Entity {
                s3_schema_version: "1.0".to_owned(),
                configuration_id: "reelay-embedded".to_owned(),
                bucket: S3Bucket {
                    arn: format!("arn:aws:s3:::{}", e.bucket),
                    name: e.bucket,
                    owner_identity: Identity {
                        principal_id: e.principal_id,
                    },
                },
                object: S3Object {
                    key: encode_key(&e.key),
                    size: Some(e.size),
                    e_tag: e.etag.map(|t| t.trim_matches('"').to_owned()),
                    version_id: None,
                    sequencer: Some(e.sequencer),
                },
            },
        };
        S3EventNotification {
            records: vec![record],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_like_aws_and_decode_back() {
        let cases = [
            ("plain/key.mp4", "plain/key.mp4"),
            ("with space.mp4", "with+space.mp4"),
            ("a+b", "a%2Bb"),
            ("50%", "50%25"),
            ("é", "%C3%A9"),
            ("x=1&y", "x%3D1%26y"),
        ];
        for (raw, encoded) in cases {
            assert_eq!(encode_key(raw), encoded, "encode {raw:?}");
            assert_eq!(decode_key(encoded).unwrap(), raw, "decode {encoded:?}");
        }
    }

    #[test]
    fn an_aws_sample_event_parses() {
        // From the AWS S3 user guide ("Event message structure"), trimmed.
        let json = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3",
            "awsRegion":"us-west-2","eventTime":"1970-01-01T00:00:00.000Z",
            "eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},
            "requestParameters":{"sourceIPAddress":"127.0.0.1"},
            "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8"},
            "s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule",
              "bucket":{"name":"mybucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},
                "arn":"arn:aws:s3:::mybucket"},
              "object":{"key":"Happy+Face.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
                "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;
        let n: S3EventNotification = serde_json::from_str(json).unwrap();
        let r = &n.records[0];
        assert!(r.is_object_created());
        assert_eq!(r.s3.bucket.name, "mybucket");
        assert_eq!(r.s3.object.decode_key().unwrap(), "Happy Face.jpg");
        assert_eq!(r.s3.object.size, Some(1024));
        assert_eq!(r.s3.object.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    }

    #[test]
    fn a_test_event_without_records_parses_as_empty() {
        let n: S3EventNotification =
            serde_json::from_str(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap();
        assert!(n.records.is_empty());
    }

    #[test]
    fn built_events_have_the_aws_shape() {
        let n = S3EventNotification::object_created(ObjectCreatedEvent {
            event_name: EVENT_COMPLETE_MULTIPART,
            region: "us-east-1".into(),
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            bucket: "masters".into(),
            key: "a b/c.mp4".into(),
            size: 42,
            etag: Some("\"abc-2\"".into()),
            sequencer: "00000000000000FF".into(),
            principal_id: "reelay".into(),
            source_ip: "127.0.0.1".into(),
            request_id: "REQ".into(),
        });
        let v = serde_json::to_value(&n).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["eventVersion"], "2.1");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["eventTime"], "2023-11-14T22:13:20.000Z");
        assert_eq!(r["eventName"], "ObjectCreated:CompleteMultipartUpload");
        assert_eq!(r["requestParameters"]["sourceIPAddress"], "127.0.0.1");
        assert_eq!(r["s3"]["s3SchemaVersion"], "1.0");
        assert_eq!(r["s3"]["configurationId"], "reelay-embedded");
        assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::masters");
        assert_eq!(r["s3"]["bucket"]["ownerIdentity"]["principalId"], "reelay");
        assert_eq!(r["s3"]["object"]["key"], "a+b/c.mp4");
        assert_eq!(r["s3"]["object"]["size"], 42);
        assert_eq!(r["s3"]["object"]["eTag"], "abc-2");
        assert_eq!(r["s3"]["object"]["sequencer"], "00000000000000FF");
        let back: S3EventNotification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }
}
