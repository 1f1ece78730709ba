//! The dashboard's files are served at `/` without a key (they hold no
//! data), with a policy that loads scripts only from reelay; what the page
//! shows comes from the API, which wants the key: `GET /v1/options` included.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn the_page_is_served_without_a_key_and_the_options_need_one() {
    let app = spawn_app().await;
    let res = app.http.get(format!("{}/", app.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"signin\""), "the sign-in is in the page");
    let hls = app
        .http
        .get(format!("{}{}", app.url, reelay::api::dashboard::HLS_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(hls.status(), 200);
    assert!(hls.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));

    let url = format!("{}/v1/options", app.url);
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let v: Value = app
        .http
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let configured: Vec<&str> = app
        .application()
        .settings
        .profiles
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, configured);
    let web = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "web")
        .unwrap();
    assert!(
        web["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "hls"),
        "{web:#}"
    );
    // A profile without outputs lists the default ladder it gets.
    let default = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "default")
        .unwrap();
    assert!(
        !default["outputs"].as_array().unwrap().is_empty(),
        "{default:#}"
    );
    assert_eq!(v["model"]["sizes"][0], "3840x2160");
    assert_eq!(v["model"]["min_duration"], 3);
    assert_eq!(v["model"]["max_duration"], 15);
    app.stop().await;
}
