//! Destinations (buyers' specs as config) checked before generation: a
//! request a destination can never accept is refused 400 naming the field
//! and the destination's rule; `POST /v1/assets/preflight` answers the plan
//! and creates nothing. After QC, a verdict per destination: in the QC
//! report, the manifest and the API, with a VAST pointer of its own for
//! each destination that passed.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A generation request of `w`x`h`, `secs` long, with or without sound,
/// for `destinations`.
fn body(w: u32, h: u32, secs: u32, sound: bool, destinations: &[&str]) -> Value {
    json!({
        "campaign": "buyers",
        "destinations": destinations,
        "generation": {
            "positivePrompt": "a red car on a mountain road",
            "width": w, "height": h, "duration": secs, "outputQuality": 80,
            "providerSettings": {"klingai": {"sound": sound}}
        }
    })
}

async fn preflight(app: &TestApp, body: &Value) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}/v1/assets/preflight", app.url))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The 400's field errors as (path, rule).
fn fields(v: &Value) -> Vec<(String, String)> {
    v["error"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {v}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_shipped_destination_refuses_what_it_can_never_accept_and_takes_what_it_can() {
    // A model table with sizes and lengths Kling does not give, so that
    // rules no Kling request can break are exercised too (a model's limits
    // are config: runware.model_spec).
    let app = spawn_app_with(|s| {
        s.runware
            .model_spec
            .sizes
            .extend(["2560x1600".into(), "1280x720".into()]);
        s.runware.model_spec.max_duration = 1500;
    })
    .await;
    // (destination, refused request, field, rule key in the message)
    let refused: Vec<(&str, Value, &str, &str)> = vec![
        (
            "iab-ctv",
            body(3840, 2160, 10, true, &["iab-ctv"]),
            "generation.duration",
            "duration_slots_secs",
        ),
        (
            "iab-ctv",
            body(3840, 2160, 15, false, &["iab-ctv"]),
            "generation.providerSettings.klingai.sound",
            "audio_required",
        ),
        (
            "iab-olv",
            body(2560, 1600, 5, true, &["iab-olv"]),
            "generation.width",
            "aspect_ratios",
        ),
        (
            "roku",
            body(3840, 2160, 5, true, &["roku"]),
            "generation.duration",
            "duration_ranges_secs",
        ),
        (
            "amazon-stv",
            body(3840, 2160, 10, true, &["amazon-stv"]),
            "generation.duration",
            "duration_slots_secs",
        ),
        (
            "prime-video",
            body(2160, 3840, 15, true, &["prime-video"]),
            "generation.width",
            "aspect_ratios",
        ),
        (
            "gam",
            body(3840, 2160, 1300, true, &["gam"]),
            "generation.duration",
            "duration_ranges_secs",
        ),
        (
            "ttd",
            body(1280, 720, 15, true, &["ttd"]),
            "generation.width",
            "min_width",
        ),
        (
            "tiktok",
            body(3840, 2160, 15, true, &["tiktok"]),
            "generation.width",
            "aspect_ratios",
        ),
        (
            "meta-reels",
            body(2880, 2880, 15, true, &["meta-reels"]),
            "generation.width",
            "aspect_ratios",
        ),
    ];
    for (dest, req, field, rule) in &refused {
        for route in ["/v1/assets", "/v1/assets/preflight"] {
            let res = app
                .http
                .post(format!("{}{route}", app.url))
                .bearer_auth(KEY)
                .json(req)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{dest} {route}");
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["error"]["code"], "invalid_request", "{v}");
            let f = fields(&v);
            assert!(
                f.iter().any(|(p, r)| p == field
                    && r.contains(&format!("destinations[0] ({dest})"))
                    && r.contains(rule)),
                "{dest}: want {field} naming {rule}, got {f:?}"
            );
        }
    }
    let accepted: Vec<(&str, Value)> = vec![
        ("iab-ctv", body(3840, 2160, 15, true, &["iab-ctv"])),
        ("iab-olv", body(2880, 2880, 5, false, &["iab-olv"])),
        ("roku", body(3840, 2160, 15, true, &["roku"])),
        ("amazon-stv", body(3840, 2160, 15, true, &["amazon-stv"])),
        ("prime-video", body(3840, 2160, 15, true, &["prime-video"])),
        ("gam", body(3840, 2160, 10, false, &["gam"])),
        ("ttd", body(3840, 2160, 10, false, &["ttd"])),
        ("tiktok", body(2160, 3840, 5, false, &["tiktok"])),
        ("meta-reels", body(2160, 3840, 8, false, &["meta-reels"])),
    ];
    for (dest, req) in &accepted {
        let (status, plan) = preflight(&app, req).await;
        assert_eq!(status, 200, "{dest}: {plan}");
        assert_eq!(plan["destinations"][0]["name"], *dest);
        assert!(!plan["destinations"][0]["source"]
            .as_str()
            .unwrap()
            .is_empty());
        assert!(
            !plan["outputs"].as_array().unwrap().is_empty(),
            "{dest}: {plan}"
        );
    }
    // Nothing was created by any of it.
    assert!(app.campaign("buyers").await.is_empty());
    assert_eq!(app.task_files(), 0);
    app.stop().await;
}

#[tokio::test]
async fn preflight_answers_the_plan_and_the_union_of_outputs() {
    let app = spawn_app().await;
    let (status, plan) = preflight(
        &app,
        &body(3840, 2160, 15, true, &["iab-ctv", "iab-olv", "roku"]),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    let names: Vec<&str> = plan["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["iab-ctv", "iab-olv", "roku"]);
    // Roku takes 23.976/25/29.97 only: the plan says the 24 fps master
    // needs a conform, and the frame rate is checked on delivery.
    let roku = &plan["destinations"][2];
    let fr = roku["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "frame_rates")
        .expect("frame_rates planned");
    assert_eq!(fr["checked"], "deliveredFiles");
    let needs = fr["needs"].as_str().unwrap();
    assert!(
        needs.contains("a frame-rate conform to 23.976 fps") && needs.contains("24 fps"),
        "{fr}"
    );
    let dur = roku["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "duration_ranges_secs")
        .unwrap();
    assert_eq!(dur["checked"], "beforeGeneration");
    assert!(roku["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["role"] == "mezzanine"));
    // The 1080p top rung of IAB CTV and IAB OLV is one file for both,
    // with its band the intersection.
    let union = plan["outputs"].as_array().unwrap();
    let fhd: Vec<&Value> = union
        .iter()
        .filter(|o| o["width"] == 1920 && o["height"] == 1080)
        .collect();
    assert_eq!(fhd.len(), 1, "{union:?}");
    let shared = fhd[0];
    let who: Vec<&str> = shared["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        who.contains(&"iab-ctv") && who.contains(&"iab-olv") && who.contains(&"roku"),
        "{shared}"
    );
    assert_eq!(
        shared["minKbps"], 6000,
        "Roku's floor is the highest: {shared}"
    );
    assert_eq!(shared["maxKbps"], 10000, "{shared}");
    let per_destination: usize = plan["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outputs"].as_array().unwrap().len())
        .sum();
    assert!(
        union.len() < per_destination,
        "shared outputs are made once"
    );
    assert!((plan["estimatedCostUsd"].as_f64().unwrap() - 6.3).abs() < 1e-6);
    assert!(
        app.campaign("buyers").await.is_empty(),
        "preflight creates nothing"
    );
    // GET /v1/options lists what `destinations` may name, with the rules.
    let options: Value = app
        .http
        .get(format!("{}/v1/options", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = options["destinations"].as_array().unwrap();
    let roku = listed
        .iter()
        .find(|d| d["name"] == "roku")
        .expect("roku listed");
    assert_eq!(roku["rules"]["top_min_kbps"], 6000);
    assert_eq!(listed.len(), 9);
    app.stop().await;
}

#[tokio::test]
async fn destinations_are_named_by_index_and_stored_with_the_asset() {
    let app = spawn_app().await;
    let (status, v) = preflight(&app, &body(3840, 2160, 15, true, &["roku", "nope", "roku"])).await;
    assert_eq!(status, 400);
    let f = fields(&v);
    assert!(
        f.iter()
            .any(|(p, r)| p == "destinations[1]" && r.contains("iab-ctv")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(p, r)| p == "destinations[2]" && r.contains("twice")),
        "{f:?}"
    );
    let mut bad = body(3840, 2160, 15, true, &[]);
    bad["destinations"] = json!("roku");
    assert_eq!(fields(&preflight(&app, &bad).await.1)[0].0, "destinations");

    let id = create(&app, &body(3840, 2160, 15, true, &["roku", "amazon-stv"])).await;
    let view = get_asset(&app.http, &app.url, &id).await;
    assert_eq!(view["destinations"], json!(["roku", "amazon-stv"]));
    let plain = create(&app, &request(5)).await;
    assert_eq!(
        get_asset(&app.http, &app.url, &plain).await["destinations"],
        json!([])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_destination_added_in_config_is_checked_without_code() {
    let app = spawn_app_with(|s| {
        s.destinations.insert(
            "square-buyer".into(),
            reelay::destinations::Destination {
                description: "feed".into(),
                source: "https://buyer.example/spec".into(),
                aspect_ratios: vec!["1:1".into()],
                duration_slots_secs: vec![10.0],
                ..Default::default()
            },
        );
        s.destinations.insert(
            "film-24".into(),
            reelay::destinations::Destination {
                source: "https://buyer.example/film".into(),
                frame_rates: vec![24.0],
                ..Default::default()
            },
        );
    })
    .await;
    let (status, v) = preflight(&app, &body(3840, 2160, 5, true, &["square-buyer"])).await;
    assert_eq!(status, 400);
    let f = fields(&v);
    assert!(
        f.iter()
            .any(|(p, r)| p == "generation.width" && r.contains("aspect_ratios")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(p, r)| p == "generation.duration" && r.contains("that fit: 10 s")),
        "{f:?}"
    );
    let (status, _) = preflight(&app, &body(2880, 2880, 10, true, &["square-buyer"])).await;
    assert_eq!(status, 200);
    // A buyer that takes 24 fps only and Roku, which does not: no rate to
    // conform the model's 24 fps to that both take. Refused, naming each
    // one's rates, rather than guessed.
    let (status, v) = preflight(&app, &body(3840, 2160, 15, true, &["film-24", "roku"])).await;
    assert_eq!(status, 400, "{v}");
    let f = fields(&v);
    assert!(
        f.iter().any(|(p, r)| p == "destinations"
            && r.contains("frame_rates")
            && r.contains("share no frame rate")
            && r.contains("roku takes 23.976, 25, 29.97, at most 30 fps")
            && r.contains("film-24 takes 24 fps")),
        "{f:?}"
    );
    let (status, plan) = preflight(&app, &body(3840, 2160, 15, true, &["film-24"])).await;
    assert_eq!(status, 200, "{plan}");
    app.stop().await;
}

/// The failed check of `rule` in a verdict's reasons.
fn rule<'a>(verdict: &'a Value, rule: &str) -> &'a Value {
    verdict["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {verdict:#}"))
}

async fn fetch(app: &TestApp, url: &str) -> (u16, String) {
    let res = app.http.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The `id` of every `MediaFile` and the URL of each, in order.
fn media_files(xml: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(xml).expect("well-formed VAST");
    doc.descendants()
        .filter(|n| n.has_tag_name("MediaFile"))
        .map(|n| {
            (
                n.attribute("id").unwrap().to_string(),
                n.text().unwrap_or_default().trim().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_destination_gets_its_verdict_and_only_a_passing_one_gets_its_own_vast() {
    // A buyer that takes H.264 MP4 files only, one that takes VP9 WebM only
    // and one whose file-size cap nothing meets (tables in the test's
    // settings), and The Trade Desk, whose 15 Mb/s floor the web profile's
    // 1080p (CRF, capped at 8 Mb/s) never reaches: the same pass makes a
    // constant-rate 1080p inside its band.
    let app = spawn_app_with(|s| {
        s.destinations.insert(
            "tiny-buyer".into(),
            reelay::destinations::Destination {
                description: "files under 1 kB".into(),
                source: "https://buyer.example/tiny".into(),
                max_file_bytes: Some(1000),
                ..Default::default()
            },
        );
        s.destinations.insert(
            "webm-buyer".into(),
            reelay::destinations::Destination {
                description: "VP9 WebM only".into(),
                source: "https://buyer.example/webm".into(),
                containers: vec!["webm".into()],
                video_codecs: vec!["vp9".into()],
                ..Default::default()
            },
        );
        s.destinations.insert(
            "mp4-buyer".into(),
            reelay::destinations::Destination {
                description: "progressive H.264 MP4 only".into(),
                source: "https://buyer.example/spec".into(),
                containers: vec!["mp4".into()],
                video_codecs: vec!["h264".into()],
                moov_first: true,
                ..Default::default()
            },
        );
    })
    .await;
    let mut req = body(
        3840,
        2160,
        3,
        true,
        &["mp4-buyer", "ttd", "webm-buyer", "tiny-buyer"],
    );
    req["profile"] = json!("web");
    req["vast"] = json!({"adTitle": "Two buyers"});
    let id = create(&app, &req).await;
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing"
    })
    .await;
    // tiny-buyer failing does not hold the variation back.
    assert_eq!(a["status"], "published", "{a:#}");
    // The verdicts are what the OpenAPI document says they are.
    let doc: Value = app
        .http
        .get(format!("{}/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema = crate::openapi::answer_schema(&doc, "/v1/assets/{id}", "get", 200);
    let failures = crate::openapi::invalid(&app.data, &[("verdicts".into(), schema, a.clone())]);
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        a["destinations_ready"],
        json!(["mp4-buyer", "ttd", "webm-buyer"]),
        "{a:#}"
    );
    let v = &a["variations"][0];
    let dests = v["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 4, "{v:#}");
    assert_eq!(dests[2]["files"], json!(["vp9-720p"]), "{:#}", dests[2]);
    let (pass, ttd, fail) = (&dests[0], &dests[1], &dests[3]);
    assert_eq!(
        (&pass["name"], &pass["passed"]),
        (&json!("mp4-buyer"), &json!(true))
    );
    // The file made for ttd's band is one more MP4 for every MP4 buyer.
    let mp4s = json!(["1080p", "720p", "480p", "1080p-16500k"]);
    assert_eq!(pass["files"], mp4s, "{pass:#}");
    // ttd passes on that file, named in the transcode's note, made once.
    assert_eq!(
        (&ttd["name"], &ttd["passed"]),
        (&json!("ttd"), &json!(true)),
        "{ttd:#}"
    );
    assert!(ttd["files"]
        .as_array()
        .unwrap()
        .contains(&json!("1080p-16500k")));
    let notes = history_notes(v);
    assert!(
        notes.iter().any(|n| n.contains("1080p-16500k for ttd")),
        "{notes:?}"
    );
    let added = v["published"]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "1080p-16500k")
        .count();
    assert_eq!(added, 1, "{:#}", v["published"]);
    assert!(pass["reasons"].as_array().unwrap().is_empty());
    let own_vast = pass["vast_url"]
        .as_str()
        .expect("a VAST of its own")
        .to_string();
    assert!(own_vast.ends_with("/vast/mp4-buyer.xml"), "{own_vast}");
    assert_eq!(
        (&fail["name"], &fail["passed"]),
        (&json!("tiny-buyer"), &json!(false))
    );
    assert!(fail["vast_url"].is_null(), "{fail:#}");
    // Among the reasons (each file it leaves out is named too), the rule
    // that fails it: no file it accepts.
    let reason = rule(fail, "files");
    assert_eq!(reason["subject"], "set");
    assert_eq!(rule(fail, "max_file_bytes")["limit"], "<= 1000 bytes");

    // The manifest and the published QC report say the same.
    let (status, text) = fetch(&app, v["published"]["manifest_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let manifest: Value = serde_json::from_str(&text).unwrap();
    let md = manifest["destinations"].as_array().unwrap();
    assert_eq!(md[0]["name"], "mp4-buyer");
    assert_eq!(md[0]["passed"], true);
    assert_eq!(md[0]["vast_url"], own_vast.as_str());
    assert_eq!(md[0]["files"], pass["files"]);
    assert_eq!(md[1]["name"], "ttd");
    assert_eq!(md[1]["passed"], true);
    assert_eq!(md[3]["name"], "tiny-buyer");
    assert_eq!(md[3]["passed"], false);
    assert_eq!(rule(&md[3], "files")["subject"], "set");
    assert!(md[3].get("vast_url").is_none(), "{:#}", md[3]);
    let (_, qc) = fetch(&app, manifest["qc_report"]["url"].as_str().unwrap()).await;
    let qc: Value = serde_json::from_str(&qc).unwrap();
    assert_eq!(qc["verdict"], "pass");
    assert_eq!(qc["destinations"][0]["passed"], true);
    assert_eq!(qc["destinations"][1]["passed"], true);
    assert_eq!(qc["destinations"][3]["passed"], false);
    assert_eq!(
        rule(&qc["destinations"][3], "files")["measured"],
        reason["measured"]
    );

    // The passing buyer's VAST lists only the MP4s it accepts (no WebM, no
    // HLS), at the manifest's URLs, with the request's ad fields.
    let (status, xml) = fetch(&app, &own_vast).await;
    assert_eq!(status, 200, "{xml}");
    let listed = media_files(&xml);
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(json!(ids), mp4s, "{xml}");
    for (id, url) in &listed {
        let r = manifest["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == id.as_str())
            .unwrap();
        assert_eq!(r["url"], url.as_str());
    }
    assert!(xml.contains("<AdTitle>Two buyers</AdTitle>"), "{xml}");
    // The set's own vast.xml still lists everything.
    let (_, all) = fetch(&app, manifest["vast_url"].as_str().unwrap()).await;
    let everything: Vec<String> = media_files(&all).into_iter().map(|(id, _)| id).collect();
    assert!(
        everything.contains(&"vp9-720p".to_string()) && everything.contains(&"hls".to_string()),
        "{everything:?}"
    );
    // The failing buyer has no pointer; ttd's lists the file made for it;
    // the WebM buyer's lists its one file.
    let tiny_vast = own_vast.replace("mp4-buyer.xml", "tiny-buyer.xml");
    assert_eq!(fetch(&app, &tiny_vast).await.0, 404);
    let (status, xml) = fetch(&app, &own_vast.replace("mp4-buyer.xml", "ttd.xml")).await;
    assert_eq!(status, 200);
    assert!(
        media_files(&xml).iter().any(|(id, _)| id == "1080p-16500k"),
        "{xml}"
    );
    let webm_vast = dests[2]["vast_url"].as_str().unwrap().to_string();
    let (status, xml) = fetch(&app, &webm_vast).await;
    assert_eq!(status, 200);
    let ids: Vec<String> = media_files(&xml).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["vp9-720p"], "{xml}");

    // Reprocessed with the default profile (MP4 only), the new set no
    // longer passes the WebM buyer: its pointer goes with the flip, the MP4
    // buyer's now lists the new set's files (ttd's file is made again).
    let res = app
        .http
        .post(format!("{}/v1/assets/{id}/reprocess", app.url))
        .bearer_auth(KEY)
        .json(&json!({"profile": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let hash = v["published"]["content_hash"].clone();
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing" && a["variations"][0]["published"]["content_hash"] != hash
    })
    .await;
    assert_eq!(a["status"], "published", "{a:#}");
    assert_eq!(
        a["destinations_ready"],
        json!(["mp4-buyer", "ttd"]),
        "{a:#}"
    );
    let webm = &a["variations"][0]["destinations"][2];
    assert_eq!(webm["passed"], false, "{webm:#}");
    assert!(webm["vast_url"].is_null());
    rule(webm, "files");
    assert_eq!(fetch(&app, &webm_vast).await.0, 404);
    let (status, xml) = fetch(&app, &own_vast).await;
    assert_eq!(status, 200);
    let new_hash = a["variations"][0]["published"]["content_hash"]
        .as_str()
        .unwrap();
    assert!(
        media_files(&xml)
            .iter()
            .all(|(_, url)| url.contains(new_hash)),
        "{xml}"
    );

    // Cancelling the asset takes the destination's pointer down too.
    let res = app
        .http
        .delete(format!("{}/v1/assets/{id}", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(fetch(&app, &own_vast).await.0, 404);
    let a = get_asset(&app.http, &app.url, &id).await;
    assert_eq!(a["destinations_ready"], json!([]), "{a:#}");
    app.stop().await;
}
