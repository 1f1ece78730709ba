//! Destinations (buyers' specs as config) checked before generation: a
//! request a destination can never accept is refused 400 naming the field
//! and the destination's rule; `POST /v1/assets/preflight` answers the plan
//! and creates nothing.

use crate::helpers::*;
use serde_json::{json, Value};

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
    assert!(fr["needs"].as_str().unwrap().contains("24 fps"), "{fr}");
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
    app.stop().await;
}
