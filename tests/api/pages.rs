//! `GET /v1/assets` pages by cursor (stable while assets are added) and
//! filters by state and creation time; `GET /v1/campaigns/{id}` counts.

use crate::helpers::*;
use serde_json::Value;
use std::collections::HashSet;

async fn get(app: &TestApp, query: &str) -> (u16, Value) {
    let res = app
        .http
        .get(format!("{}/v1/assets?{query}", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pages_follow_the_cursor_and_filters_name_what_they_refuse() {
    // No generation is rendered while this runs.
    let app = spawn_app_with(|s| s.simulator.generation_secs = 600.0).await;
    let mut body = request(3);
    body["campaign"] = "pages".into();
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(create(&app, &body).await);
    }
    let (status, p1) = get(&app, "campaign=pages&limit=2").await;
    assert_eq!(status, 200, "{p1:#}");
    assert_eq!(ids(&p1), [made[4].clone(), made[3].clone()], "newest first");
    let c1 = p1["next_cursor"].as_str().unwrap().to_string();

    // An asset made between pages does not shift the next one.
    let newer = create(&app, &body).await;
    let (_, p2) = get(&app, &format!("campaign=pages&limit=2&cursor={c1}")).await;
    assert_eq!(ids(&p2), [made[2].clone(), made[1].clone()]);
    let c2 = p2["next_cursor"].as_str().unwrap();
    let (_, p3) = get(&app, &format!("campaign=pages&limit=2&cursor={c2}")).await;
    assert_eq!(ids(&p3), [made[0].clone()]);
    assert!(p3["next_cursor"].is_null(), "{p3:#}");
    let (_, all) = get(&app, "campaign=pages&limit=500").await;
    assert_eq!(ids(&all).len(), 6);
    assert_eq!(ids(&all)[0], newer);
    let seen: HashSet<String> = [ids(&p1), ids(&p2), ids(&p3)]
        .concat()
        .into_iter()
        .collect();
    assert_eq!(seen, made.iter().cloned().collect());

    // Filters: by a variation state, by creation time.
    let cancelled = app
        .http
        .delete(format!("{}/v1/assets/{}", app.url, made[1]))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let (_, c) = get(&app, "campaign=pages&state=cancelled").await;
    assert_eq!(ids(&c), [made[1].clone()]);
    let (_, none) = get(&app, "campaign=pages&state=published").await;
    assert_eq!(none["count"], 0);
    let third = all["assets"][3]["created_at"].as_str().unwrap().to_string();
    let enc = |t: &str| t.replace('+', "%2B");
    let (status, before) = get(
        &app,
        &format!("campaign=pages&created_before={}", enc(&third)),
    )
    .await;
    assert_eq!(status, 200, "{before:#}");
    assert!(ids(&before).iter().all(|id| id != &ids(&all)[3]));
    let (_, after) = get(
        &app,
        &format!("campaign=pages&created_after={}", enc(&third)),
    )
    .await;
    assert!(ids(&after).contains(&ids(&all)[3]));
    assert_eq!(
        ids(&before).len() + ids(&after).len(),
        6,
        "the two halves make the whole"
    );

    // Bad values: 400 naming the parameter.
    for (query, param) in [
        ("cursor=bm90LW91cnM", "cursor"),
        ("cursor=%21%21", "cursor"),
        ("state=done", "state"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01T00:00:00Z", "created_before"),
        ("limit=many", "limit"),
        // The documented range is enforced, not quietly clamped.
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        // A parameter the list does not have (the asset's `status` is not
        // a filter) is refused, not ignored into an unfiltered page.
        ("campaign=pages&status=published", "status"),
    ] {
        let (status, e) = get(&app, query).await;
        assert_eq!(status, 400, "{query}: {e:#}");
        assert_eq!(e["error"]["code"], "invalid_request");
        assert_eq!(e["error"]["fields"][0]["path"], param, "{query}: {e:#}");
    }

    // The campaign: counts by state and status, and its cost.
    let res = app
        .http
        .get(format!("{}/v1/campaigns/pages", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let camp: Value = res.json().await.unwrap();
    assert_eq!(camp["assets"], 6, "{camp:#}");
    assert_eq!(camp["variations"], 6);
    assert_eq!(camp["variations_by_state"]["cancelled"], 1);
    let counted: u64 = camp["variations_by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 6);
    assert_eq!(camp["assets_by_status"]["cancelled"], 1);
    assert_eq!(camp["assets_by_status"]["processing"], 5);
    assert_eq!(camp["cost_usd"], all["cost_usd"]);
    let res = app
        .http
        .get(format!("{}/v1/campaigns/nobody-here", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}
