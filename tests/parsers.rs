//! Property tests of every parser of outside input: object-storage event
//! envelopes (S3, SNS, EventBridge, MinIO) and SNS signatures, Runware
//! envelopes (responses and webhooks), ffprobe JSON, m3u8 playlists, the
//! generation request validator, callback URLs, the outbound address
//! guard, and the CDN origin's `Range` and `If-None-Match` readers. Inputs are random bytes, random JSON, and valid documents with
//! random parts replaced, removed or added. None may panic, and a refusal
//! must say what was wrong (a field path and a rule, or a reason).
//!
//! Case counts keep the whole file to seconds: `PROPTEST_CASES` raises them.

use proptest::prelude::*;
use proptest::sample::Index;
use reelay::api::cdn::{if_none_match_hits, parse_range, Range};
use reelay::api::webhooks;
use reelay::events::{self, sns};
use reelay::media::hls::{self, MasterPlaylist, MediaPlaylist};
use reelay::media::probe;
use reelay::outbound::{is_public, Guard, HostPatterns};
use reelay::runware::{self, Envelope, ModelSpec};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Keys and words the parsers look for, so random documents reach deep.
const WORDS: &[&str] = &[
    "Records",
    "s3",
    "bucket",
    "object",
    "key",
    "name",
    "eTag",
    "etag",
    "versionId",
    "version-id",
    "sequencer",
    "size",
    "eventName",
    "EventName",
    "Key",
    "Type",
    "TopicArn",
    "Message",
    "MessageId",
    "SubscribeURL",
    "Token",
    "Timestamp",
    "Subject",
    "Signature",
    "SignatureVersion",
    "SigningCertURL",
    "Notification",
    "SubscriptionConfirmation",
    "UnsubscribeConfirmation",
    "detail-type",
    "detail",
    "Object Created",
    "Event",
    "s3:TestEvent",
    "ObjectCreated:Put",
    "data",
    "errors",
    "taskType",
    "taskUUID",
    "status",
    "success",
    "error",
    "processing",
    "cost",
    "videoURL",
    "code",
    "message",
    "parameter",
    "streams",
    "format",
    "codec_type",
    "video",
    "audio",
    "codec_name",
    "width",
    "height",
    "avg_frame_rate",
    "r_frame_rate",
    "duration",
    "bit_rate",
    "nb_frames",
    "level",
    "disposition",
    "attached_pic",
    "sample_rate",
    "channels",
    "format_name",
    "positivePrompt",
    "negativePrompt",
    "outputQuality",
    "providerSettings",
    "klingai",
    "sound",
    "inputs",
    "frameImages",
    "elements",
    "images",
    "multiPrompt",
    "frame",
    "first",
    "last",
    "seed",
    "fps",
    "outputFormat",
    "MP4",
    "MOV",
    "24/1",
    "0/0",
    "N/A",
    "1e309",
    "-1",
    "%",
    "%zz",
    "+",
    "masters/c/a.mp4",
    "reelay-masters",
    "1",
    "2",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        (-3i64..5000).prop_map(Value::from),
        word().prop_map(Value::from),
        "[ -~]{0,16}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(prop_oneof![word(), "[a-zA-Z_]{1,8}"], inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// One change: 0 replaces a node, 1 removes a member or item, 2 adds a member.
type Change = (Index, Value, u8, String);

fn change() -> impl Strategy<Value = Change> {
    (any::<Index>(), json(), 0u8..3, word())
}

fn mutate(base: &Value, changes: &[Change]) -> Value {
    let mut v = base.clone();
    for (idx, new, op, key) in changes {
        let mut ps = Vec::new();
        pointers(&v, String::new(), &mut ps);
        let p = idx.get(&ps).clone();
        let Some(node) = v.pointer_mut(&p) else {
            continue;
        };
        match (op, node) {
            (0, node) => *node = new.clone(),
            (1, Value::Object(m)) if !m.is_empty() => {
                let k = m.keys().nth(idx.index(m.len())).unwrap().clone();
                m.remove(&k);
            }
            (1, Value::Array(a)) if !a.is_empty() => {
                a.remove(idx.index(a.len()));
            }
            (2, Value::Object(m)) => {
                m.insert(key.clone(), new.clone());
            }
            (_, node) => *node = new.clone(),
        }
    }
    v
}

fn s3_record() -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "reelay-masters"}, "object": {"key": "masters/c/a+b%2Bc.mp4",
               "size": 5, "eTag": "\"abc\"", "versionId": "v1", "sequencer": "0A"}}
    })
}

fn envelopes() -> Vec<Value> {
    let s3 = json!({"Records": [s3_record()]});
    vec![
        s3.clone(),
        json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
               "Message": s3.to_string(), "Timestamp": "2026-01-01T00:00:00Z",
               "SignatureVersion": "2", "Signature": "AAAA",
               "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem"}),
        json!({"Type": "SubscriptionConfirmation", "TopicArn": "arn:t", "MessageId": "m",
               "Message": "m", "Token": "t", "Timestamp": "ts",
               "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"}),
        json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
               "detail": {"bucket": {"name": "b"}, "object": {"key": "masters/c/x.mp4",
               "size": 5, "etag": "abc", "version-id": "v1", "sequencer": "0A"}}}),
        json!({"EventName": "s3:ObjectCreated:Put", "Key": "b/masters/c/a b.mp4", "Records": [s3_record()]}),
        json!({"EventName": "s3:ObjectCreated:Put", "Key": "b/masters/c/a%20b.mp4"}),
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
    ]
}

const EVENT_REASONS: &[&str] = &[
    "JSON",
    "object or array",
    "nested",
    "Message",
    "SubscribeURL",
    "bucket.name",
    "object.key",
    "Records",
    "Key",
    "UTF-8",
    "not an S3",
];

fn assert_event_error(e: &str) {
    assert!(
        EVENT_REASONS.iter().any(|r| e.contains(r)),
        "an event error names what is wrong: {e}"
    );
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn event_bodies_of_random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = events::parse(&body) {
            assert_event_error(&e);
        }
    }

    #[test]
    fn random_json_event_bodies_never_panic(v in json()) {
        if let Err(e) = events::parse(v.to_string().as_bytes()) {
            assert_event_error(&e);
        }
    }

    #[test]
    fn changed_event_envelopes_parse_or_say_why(
        which in any::<Index>(),
        changes in prop::collection::vec(change(), 1..4),
    ) {
        let all = envelopes();
        let v = mutate(which.get(&all), &changes);
        match events::parse(v.to_string().as_bytes()) {
            Ok(p) => {
                for e in &p.events {
                    // An identity, when there is one, is never empty.
                    if let Some(id) = e.identity() {
                        prop_assert!(id.len() > 2);
                    }
                }
                // Every SNS envelope met is handed to signature checks.
                for m in &p.sns {
                    prop_assert!(m.get("Type").is_some());
                    let _ = sns::string_to_sign(m);
                }
            }
            Err(e) => assert_event_error(&e),
        }
    }

    #[test]
    fn sns_signature_checks_never_panic_and_refuse_changed_messages(
        changes in prop::collection::vec(change(), 1..4),
        cert in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let base = envelopes()[1].clone();
        let v = mutate(&base, &changes);
        if let Err(e) = sns::string_to_sign(&v) {
            prop_assert!(!e.to_string().is_empty());
        }
        // Random bytes are never a certificate that verifies anything.
        prop_assert!(sns::verify_with_cert(&v, &cert).is_err());
        let _ = sns::cert_from_pem(&cert);
    }

    #[test]
    fn runware_envelopes_decode_or_name_the_field(
        which in any::<Index>(),
        changes in prop::collection::vec(change(), 0..4),
    ) {
        let samples = [
            json!({"data": [{"taskType": "videoInference", "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
                    "status": "success", "videoURL": "https://x/v.mp4", "cost": 0.18, "seed": 3}]}),
            json!({"errors": [{"code": "timeoutProvider", "message": "m", "parameter": "duration",
                    "taskType": "videoInference", "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
                    "allowedValues": [5, 10]}]}),
            json!({"data": [{"taskType": "videoInference", "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
                    "status": "error", "error": {"code": "providerError", "message": "m"}}]}),
            json!({"data": [{"taskType": "getResponse", "status": "processing", "progress": "42.5"}]}),
        ];
        let v = mutate(which.get(&samples), &changes);
        let body = v.to_string();
        match webhooks::decode(body.as_bytes()) {
            Ok(env) => {
                let _ = env.all_errors();
                // The same bytes decode the same way through plain serde
                // (what the REST and WebSocket clients use).
                prop_assert!(serde_json::from_str::<Envelope>(&body).is_ok());
            }
            Err(e) => {
                prop_assert!(!e.path.is_empty() && !e.rule.is_empty(), "{e:?}");
                if e.path != "$" {
                    // The path names a member that is in the document.
                    let first = e.path.split(['.', '[']).next().unwrap();
                    prop_assert!(v.get(first).is_some(), "{e:?} in {body}");
                }
            }
        }
    }

    #[test]
    fn webhook_bodies_of_random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = webhooks::decode(&body) {
            prop_assert!(!e.rule.is_empty());
        }
    }

    #[test]
    fn ffprobe_json_parses_or_says_why(changes in prop::collection::vec(change(), 0..5), which in any::<bool>()) {
        let fixture: &[u8] = if which {
            include_bytes!("../src/media/fixtures/ffprobe-5.1.9-h264-aac.json")
        } else {
            include_bytes!("../src/media/fixtures/ffprobe-5.1.9-vp9-opus.json")
        };
        let base: Value = serde_json::from_slice(fixture).unwrap();
        let v = mutate(&base, &changes);
        match probe::parse(v.to_string().as_bytes()) {
            Ok(p) => {
                // Never NaN or infinite (a negative duration passes through:
                // arrival compares it with the request and rejects it).
                prop_assert!(p.duration_secs.is_finite(), "{p:?}");
                if let Some(video) = &p.video {
                    prop_assert!(video.fps.is_finite() && video.fps >= 0.0, "{video:?}");
                }
            }
            Err(e) => {
                let t = e.to_string();
                prop_assert!(t.contains("ffprobe JSON") || t.contains("format"), "{t}");
            }
        }
    }

    #[test]
    fn ffprobe_output_of_random_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = probe::parse(&body);
    }

    #[test]
    fn playlists_of_random_lines_never_panic(lines in prop::collection::vec(playlist_line(), 0..24)) {
        let text = lines.join("\n");
        let m = MasterPlaylist::parse(&text);
        let stream_infs = lines.iter().filter(|l| l.trim_start().starts_with("#EXT-X-STREAM-INF:")).count();
        prop_assert!(m.variants.len() <= stream_infs);
        let _ = m.render();
        let media = MediaPlaylist::parse(&text);
        prop_assert!(media.segments.len() <= lines.len());
        let d = media.duration_secs();
        prop_assert!(!d.is_nan());
        let _ = hls::uris(&text);
        for l in &lines {
            if let Some((_, attrs)) = l.split_once(':') {
                let _ = hls::attributes(attrs);
            }
        }
    }

    #[test]
    fn playlists_of_random_text_never_panic(text in any::<String>()) {
        let _ = MasterPlaylist::parse(&text);
        let _ = MediaPlaylist::parse(&text);
        let _ = hls::uris(&text);
        let _ = hls::attributes(&text);
    }

    #[test]
    fn generation_requests_validate_or_name_every_field(
        changes in prop::collection::vec(change(), 0..4),
    ) {
        let base = json!({
            "positivePrompt": "a red car on a mountain road", "negativePrompt": "blur",
            "width": 3840, "height": 2160, "duration": 5, "outputQuality": 80, "seed": 7,
            "outputFormat": "MP4",
            "inputs": {"frameImages": [{"inputImage": "https://img.example/a.png", "frame": "first"}]},
            "providerSettings": {"klingai": {"sound": true}}
        });
        let v = mutate(&base, &changes);
        if let Err(errors) = runware::parse_and_validate_generation(&v, &ModelSpec::kling_o3_4k(), "generation") {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(e.path.starts_with("generation"), "{e}");
                prop_assert!(!e.rule.is_empty(), "{e}");
            }
        }
    }

    #[test]
    fn random_json_generation_requests_never_panic(v in json()) {
        if let Err(errors) = runware::parse_and_validate_generation(&v, &ModelSpec::kling_o3_4k(), "generation") {
            prop_assert!(errors.iter().all(|e| e.path.starts_with("generation") && !e.rule.is_empty()));
        }
        let _ = runware::parse_and_validate_task(&v, &ModelSpec::kling_o3_4k());
    }

    #[test]
    fn urls_of_any_text_never_panic_and_never_pass_a_refused_literal(
        u in prop_oneof![any::<String>(), url_like()],
    ) {
        let g = Guard::default();
        let _ = reelay::domain::CallbackUrl::parse(&u);
        if let Ok(url) = g.check_url(&u) {
            prop_assert!(url.username().is_empty() && url.password().is_none());
            match url.host() {
                Some(url::Host::Ipv4(ip)) => prop_assert!(is_public(IpAddr::V4(ip)), "{u}"),
                Some(url::Host::Ipv6(ip)) => prop_assert!(is_public(IpAddr::V6(ip)), "{u}"),
                Some(url::Host::Domain(d)) => prop_assert!(!d.is_empty()),
                None => prop_assert!(false, "{u} has no host"),
            }
        }
        let _ = HostPatterns::new(std::slice::from_ref(&u));
    }

    #[test]
    fn every_spelling_of_a_refused_ipv4_address_is_refused(
        net in prop::sample::select(REFUSED_V4),
        low in any::<u32>(),
    ) {
        let (base, bits) = net;
        let mask = if bits == 32 { 0 } else { u32::MAX >> bits };
        let ip = Ipv4Addr::from((u32::from(Ipv4Addr::from(base)) & !mask) | (low & mask));
        prop_assert!(!is_public(IpAddr::V4(ip)));
        let g = Guard::default();
        for s in spellings(ip) {
            prop_assert!(g.check_url(&s).is_err(), "{s} ({ip}) passed");
        }
    }

    #[test]
    fn every_spelling_of_a_public_address_names_that_address(n in any::<u32>()) {
        let ip = Ipv4Addr::from(n);
        let g = Guard::default();
        for s in spellings(ip) {
            let parsed = url::Url::parse(&s).unwrap();
            if s.contains('[') {
                prop_assert_eq!(parsed.host(), Some(url::Host::Ipv6(ip.to_ipv6_mapped())));
            } else {
                prop_assert_eq!(parsed.host(), Some(url::Host::Ipv4(ip)), "{}", s);
            }
            prop_assert_eq!(g.check_url(&s).is_ok(), is_public(IpAddr::V4(ip)), "{}", s);
        }
    }
}

const REFUSED_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
    ([169, 254, 169, 254], 32),
];

/// The ways a URL can write one IPv4 address.
fn spellings(ip: Ipv4Addr) -> Vec<String> {
    let n = u32::from(ip);
    let [a, b, c, d] = ip.octets();
    vec![
        format!("http://{ip}/"),
        format!("http://{n}/"),
        format!("http://0x{n:x}/"),
        format!("http://0{n:o}/"),
        format!("http://0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}/"),
        format!("http://0{a:o}.0{b:o}.0{c:o}.0{d:o}/"),
        format!(
            "http://{a}.{}/",
            (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)
        ),
        format!("http://{a}.{b}.{}/", (u32::from(c) << 8) | u32::from(d)),
        format!("http://{ip}./"),
        format!("https://{ip}:8443/x"),
        format!("http://[::ffff:{ip}]/"),
        format!("http://[::ffff:{:x}:{:x}]/", n >> 16, n & 0xffff),
    ]
}

fn url_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["http", "https", "ftp", "HTTP", "file", ""][..]),
        "[a-z0-9:@.\\[\\]%-]{0,24}",
        "[ -~]{0,12}",
    )
        .prop_map(|(scheme, host, rest)| format!("{scheme}://{host}/{rest}"))
}

fn playlist_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#EXTM3U".to_string()),
        Just("#EXT-X-ENDLIST".to_string()),
        Just("#EXT-X-INDEPENDENT-SEGMENTS".to_string()),
        "#EXT-X-VERSION:[0-9a-z-]{0,12}",
        "#EXT-X-TARGETDURATION:[0-9.e-]{0,12}",
        "#EXTINF:[0-9.eE+-]{0,10},[ -~]{0,8}",
        "#EXT-X-STREAM-INF:((BANDWIDTH|AVERAGE-BANDWIDTH|RESOLUTION|CODECS|FRAME-RATE)=(\"[ -~]{0,12}\"?|[0-9x.]{0,12}),?){0,5}",
        "[a-z0-9/_.-]{1,16}\\.(ts|m3u8|mp4)",
        "[ -~]{0,24}",
        any::<String>(),
    ]
}

#[test]
fn the_playlist_reader_reads_back_what_the_writer_wrote() {
    let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\"\nhls-1080p/index.m3u8\n";
    let m = MasterPlaylist::parse(text);
    assert_eq!(m.variants.len(), 1);
    assert_eq!(MasterPlaylist::parse(&m.render()), m);
}

proptest! {
    #![proptest_config(cases(3000))]

    /// Any bytes: no panic; a refusal says why; what is accepted is
    /// canonical (reading it again gives it back).
    #[test]
    fn range_headers_never_panic_and_accepted_ones_are_canonical(raw in prop::collection::vec(any::<u8>(), 0..48)) {
        match parse_range(&raw) {
            Range::Bytes(canon) => prop_assert_eq!(parse_range(canon.as_bytes()), Range::Bytes(canon.clone())),
            Range::Malformed(why) => prop_assert!(!why.is_empty()),
            Range::Ignored => {}
        }
    }

    /// Every well-formed single range is served, every reversed one is 416.
    #[test]
    fn well_formed_ranges_are_read_and_reversed_ones_refused(a in 0u64..u64::MAX / 2, len in 0u64..1_000_000, pad in "[ ]{0,2}") {
        let b = a + len;
        prop_assert_eq!(parse_range(format!("bytes={pad}{a}-{b}{pad}").as_bytes()), Range::Bytes(format!("bytes={a}-{b}")));
        prop_assert_eq!(parse_range(format!("bytes={a}-").as_bytes()), Range::Bytes(format!("bytes={a}-")));
        if len > 0 {
            let reversed = format!("bytes={b}-{a}");
            prop_assert!(matches!(parse_range(reversed.as_bytes()), Range::Malformed(_)));
            prop_assert_eq!(parse_range(format!("bytes=-{len}").as_bytes()), Range::Bytes(format!("bytes=-{len}")));
        }
    }

    /// Any bytes: no panic; a list names the tag exactly when one of its
    /// entries is the tag (strong or weak) or `*`.
    #[test]
    fn if_none_match_names_the_tag_only_when_listed(
        others in prop::collection::vec("[a-f0-9]{1,12}", 0..5),
        at in any::<Index>(),
        listed in any::<bool>(),
        weak in any::<bool>(),
        noise in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let etag = "\"0123456789abcdef\"";
        let _ = if_none_match_hits(&noise, etag);
        let mut tags: Vec<String> = others.iter().map(|o| format!("\"{o}\"")).collect();
        if listed {
            let t = if weak { format!("W/{etag}") } else { etag.to_string() };
            let i = at.index(tags.len() + 1);
            tags.insert(i, t);
        }
        let value = tags.join(", ");
        prop_assert_eq!(if_none_match_hits(value.as_bytes(), etag), listed, "{}", value);
        let with_star = format!("{value}, *");
        prop_assert!(if_none_match_hits(with_star.as_bytes(), etag));
    }
}
