use super::test_backends::backends;
use super::*;

async fn seed(store: &Store, n: i64) {
    seed_with(store, n, None).await
}

async fn seed_with(store: &Store, n: i64, callback_url: Option<&str>) {
    let asset = Asset {
        id: "a1".into(),
        campaign: "c".into(),
        profile: "default".into(),
        brief: crate::jobs::model::Brief::Generation(Box::default()),
        callback_url: callback_url.map(str::to_string),
        ttl_secs: 3600,
        created_at: now_ms(),
        qc: None,
        source: Source::Generated,
        destinations: Vec::new(),
        vast: Default::default(),
        captions: Vec::new(),
    };
    let vars: Vec<_> = (0..n)
        .map(|i| NewVariation {
            id: format!("v{i}"),
            idx: i,
            task_uuid: format!("t{i}"),
            webhook_token_sha256: "x".into(),
            master_key: format!("m{i}"),
        })
        .collect();
    store.create_asset(&asset, &vars).await.unwrap();
}

#[tokio::test]
async fn a_claimed_row_is_not_handed_out_twice() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 1).await;
        let first = store.claim(Duration::from_secs(30)).await.unwrap();
        assert!(first.is_some());
        assert!(store
            .claim(Duration::from_secs(30))
            .await
            .unwrap()
            .is_none());
        b.finish().await;
    }
}

#[tokio::test]
async fn progress_rides_the_heartbeat_and_goes_with_the_state() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 1).await;
        let lease = Duration::from_secs(30);
        let claim = store.claim(lease).await.unwrap().unwrap();
        assert!(store
            .update(&claim, Update::to(State::Transcoding))
            .await
            .unwrap());
        let claim = Claim {
            state: State::Transcoding,
            ..claim
        };
        let report = |pc: f64| StepProgress {
            stage: "transcoding".into(),
            percent: Some(pc),
            fps: Some(48.0),
            speed: Some(1.5),
            eta_secs: Some(2.0),
        };
        let row = || async { store.variation("v0").await.unwrap().unwrap() };
        assert_eq!(row().await.progress, None);
        assert!(store
            .renew_with(&claim, lease, None, Some(&report(40.0)))
            .await
            .unwrap());
        let v = row().await;
        assert_eq!(v.progress, Some(report(40.0)));
        assert_eq!(v.stage_progress, Some(40.0), "the percent goes along");
        // A plain renewal keeps what was reported.
        assert!(store.renew(&claim, lease, None).await.unwrap());
        assert_eq!(row().await.progress, Some(report(40.0)));
        // A fenced-out holder writes nothing.
        let stale = Claim {
            attempt: claim.attempt - 1,
            ..claim.clone()
        };
        assert!(!store
            .renew_with(&stale, lease, None, Some(&report(90.0)))
            .await
            .unwrap());
        assert_eq!(row().await.progress, Some(report(40.0)));
        // The next state starts without it.
        assert!(store
            .update(&claim, Update::to(State::Checking))
            .await
            .unwrap());
        let v = row().await;
        assert_eq!(v.progress, None);
        b.finish().await;
    }
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_the_old_holder_is_fenced_out() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 1).await;
        let old = store
            .claim(Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let new = store.claim(Duration::from_secs(30)).await.unwrap().unwrap();
        assert_eq!(new.attempt, old.attempt + 1);
        assert!(!store
            .update(&old, Update::to(State::Submitted))
            .await
            .unwrap());
        assert!(!store
            .renew(&old, Duration::from_secs(30), None)
            .await
            .unwrap());
        assert!(store
            .update(&new, Update::to(State::Submitted))
            .await
            .unwrap());
        assert_eq!(
            store.times_entered("v0", State::Submitted).await.unwrap(),
            1
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn concurrent_claimers_share_out_rows_without_duplicates() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 20).await;
        let mut handles = Vec::new();
        for _ in 0..6 {
            let s = store.clone();
            handles.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = s.claim(Duration::from_secs(30)).await.unwrap() {
                    got.push(c.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(before, 20);
        assert_eq!(all.len(), 20);
        b.finish().await;
    }
}

#[tokio::test]
async fn terminal_rows_are_never_claimed_and_nudges_do_not_revive_them() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 1).await;
        let c = store.claim(Duration::from_secs(30)).await.unwrap().unwrap();
        assert!(store.update(&c, Update::to(State::Failed)).await.unwrap());
        assert!(!store.nudge("v0").await.unwrap());
        assert!(store
            .claim(Duration::from_secs(30))
            .await
            .unwrap()
            .is_none());
        b.finish().await;
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_terminal_transition_queues_its_callback_in_the_same_commit() {
    for b in backends().await {
        let store = &b.store;
        seed_with(store, 2, Some("https://ops.example/hook")).await;
        let c = store.claim(LEASE).await.unwrap().unwrap();
        // Not terminal: nothing to announce.
        assert!(store
            .update(&c, Update::to(State::Submitted).note("x"))
            .await
            .unwrap());
        assert!(store.outbox_of_asset("a1").await.unwrap().is_empty());
        // A worker that lost its lease writes nothing, so announces nothing.
        let stale = Claim {
            attempt: c.attempt - 1,
            ..c.clone()
        };
        let u =
            Update::to(State::Failed).reason(crate::reason::ReasonCode::from_generator("x"), "y");
        assert!(!store.update(&stale, u.clone()).await.unwrap());
        assert!(store.outbox_of_asset("a1").await.unwrap().is_empty());
        let c = Claim {
            state: State::Submitted,
            ..c
        };
        assert!(store.update(&c, u).await.unwrap());
        let rows = store.outbox_of_asset("a1").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event_type, "asset.failed");
        assert_eq!(rows[0].url, "https://ops.example/hook");
        let body: serde_json::Value = serde_json::from_str(&rows[0].body).unwrap();
        assert_eq!(body["id"], rows[0].id.as_str());
        assert_eq!(body["data"]["reason"]["code"], "x");
        assert_eq!(body["data"]["variation"]["id"], c.id.as_str());
        // Handed out once while leased; back after a failed attempt.
        let got = store.claim_outbox(10, LEASE).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(store.claim_outbox(10, LEASE).await.unwrap().is_empty());
        store
            .outbox_retry(&got[0].id, 1, now_ms() - 1, "HTTP 503")
            .await
            .unwrap();
        let again = store.claim_outbox(10, LEASE).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        store.outbox_delivered(&again[0].id, 2).await.unwrap();
        let rows = store.outbox_of_asset("a1").await.unwrap();
        assert!(rows[0].delivered_at.is_some());
        assert!(
            store.claim_outbox(10, LEASE).await.unwrap().is_empty(),
            "delivered is done"
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn object_events_are_new_once_and_older_sequencers_are_stale() {
    use s3::{record_event, EventFreshness::*};
    for b in backends().await {
        let store = &b.store;
        let mut tx = store.begin_immediate().await.unwrap();
        macro_rules! rec {
            ($version:expr, $seq:expr) => {
                record_event(&mut tx, "b", "k", $version, $seq)
                    .await
                    .unwrap()
            };
        }
        assert_eq!(rec!("e:1", Some("00A0")), New);
        assert_eq!(rec!("e:1", Some("00A0")), Duplicate);
        assert_eq!(
            rec!("e:1", Some("FFFF")),
            Duplicate,
            "same version, any sequencer"
        );
        assert_eq!(rec!("e:0", Some("9F")), Stale, "older than 00A0");
        assert_eq!(
            rec!("e:0", Some("9F")),
            Duplicate,
            "recorded even when stale"
        );
        assert_eq!(rec!("e:2", Some("0B00")), New);
        assert_eq!(rec!("e:3", None), New, "no sequencer: nothing to order by");
        assert_eq!(rec!("e:4", Some("0AFF")), Stale);
        tx.commit().await.unwrap();
        let outcomes = store.s3_event_outcomes("b", "k").await.unwrap();
        assert_eq!(outcomes.iter().filter(|(_, o)| o == "stale").count(), 2);
        // Another key has its own order.
        let mut tx = store.begin_immediate().await.unwrap();
        assert_eq!(
            record_event(&mut tx, "b", "k2", "e:0", Some("01"))
                .await
                .unwrap(),
            New
        );
        tx.commit().await.unwrap();
        b.finish().await;
    }
}

#[tokio::test]
async fn a_restart_fences_out_a_running_worker_but_waits_for_a_sweepers_lease() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 1).await;
        // Running: the worker's lease is taken away.
        let worker = store.claim(LEASE).await.unwrap().unwrap();
        assert!(store
            .restart("v0", State::Submitted, "new master")
            .await
            .unwrap());
        assert!(!store.renew(&worker, LEASE, None).await.unwrap());
        assert!(!store
            .update(&worker, Update::to(State::Failed))
            .await
            .unwrap());
        let c = store.claim(LEASE).await.unwrap().expect("runnable at once");
        assert_eq!(c.state, State::Submitted);
        assert!(store
            .update(&c, Update::to(State::Published))
            .await
            .unwrap());
        // A running row is never swept; a finished one is, under its lease.
        let sweep = store.claim_for_sweep("v0", LEASE).await.unwrap().unwrap();
        assert!(store.claim_for_sweep("v0", LEASE).await.unwrap().is_none());
        assert!(store
            .restart("v0", State::Arrived, "reprocess")
            .await
            .unwrap());
        assert!(
            store.claim(LEASE).await.unwrap().is_none(),
            "waits for the sweeper"
        );
        assert!(
            store.renew(&sweep, LEASE, None).await.unwrap(),
            "the sweeper keeps its lease"
        );
        store.release(&sweep).await.unwrap();
        let c = store.claim(LEASE).await.unwrap().unwrap();
        assert_eq!(c.state, State::Arrived);
        assert!(store.claim_for_sweep("v0", LEASE).await.unwrap().is_none());
        let history: Vec<_> = store.transitions("v0").await.unwrap();
        let notes: Vec<_> = history.iter().filter_map(|t| t.note.as_deref()).collect();
        assert_eq!(notes, ["new master", "reprocess"]);
        b.finish().await;
    }
}

/// Walks a variation through `path` (as restarts, which record each
/// transition) and gives it a master.
async fn drive(store: &Store, id: &str, path: &[State]) {
    for s in path {
        assert!(store.restart(id, *s, "test").await.unwrap());
    }
    on_pool!(store.pool, p => {
        sqlx::query("UPDATE variations SET master_sha256 = 'abc' WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .unwrap();
    });
}

#[tokio::test]
async fn reprocess_takes_only_variations_whose_current_master_passed_arrival() {
    use State::*;
    for b in backends().await {
        let store = &b.store;
        seed(store, 4).await;
        drive(store, "v0", &[Submitted, Arrived, Transcoding, Published]).await;
        drive(store, "v1", &[Submitted, Arrived, Published, Expired]).await;
        drive(store, "v2", &[Submitted, Failed]).await;
        // A newer master was turned down at arrival: nothing to build on.
        drive(
            store,
            "v3",
            &[Submitted, Arrived, Published, Submitted, Rejected],
        )
        .await;
        let ids = store.reprocess("a1", "default", "again").await.unwrap();
        assert_eq!(ids, ["v0"]);
        assert_eq!(store.variation("v0").await.unwrap().unwrap().state, Arrived);
        assert_eq!(
            store.variation("v3").await.unwrap().unwrap().state,
            Rejected
        );
        assert!(store
            .reprocess("missing", "default", "x")
            .await
            .unwrap()
            .is_empty());
        b.finish().await;
    }
}

#[tokio::test]
async fn a_turned_down_new_version_does_not_keep_the_old_set_past_its_ttl() {
    use State::*;
    for b in backends().await {
        let store = &b.store;
        seed(store, 2).await;
        drive(
            store,
            "v0",
            &[Submitted, Arrived, Published, Submitted, Rejected],
        )
        .await;
        drive(store, "v1", &[Submitted, Rejected]).await;
        let manifest = serde_json::json!({
            "asset_id": "a1", "variation": 0, "campaign": "c", "content_hash": "h",
            "universal_ad_id": "u", "published_at": "", "expires_at": "", "duration_secs": 1.0,
            "master_sha256": "", "renditions": [],
            "poster": {"url": "", "key": "", "size": 0, "sha256": ""},
            "qc_report": {"url": "", "key": "", "size": 0, "sha256": ""},
            "manifest_url": "", "vast_url": ""
        });
        on_pool!(store.pool, p => {
            sqlx::query("UPDATE variations SET published_json = $1, arrived_at = 0 WHERE id = 'v0'")
                .bind(Json(&manifest))
                .execute(p)
                .await
                .unwrap();
        });
        let due: Vec<String> = store
            .published_due(now_ms())
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(due, ["v0"], "v1 never had a live set");
        assert!(store.expire("v0", "ttl", Vec::new()).await.unwrap());
        assert!(!store.expire("v0", "ttl", Vec::new()).await.unwrap());
        assert!(!store.expire("v1", "ttl", Vec::new()).await.unwrap());
        let last = store.transitions("v0").await.unwrap().pop().unwrap();
        assert_eq!(
            (last.from_state, last.to_state),
            (State::Rejected, State::Expired)
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn retired_sets_come_due_after_the_grace_counted_from_retirement() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 1).await;
        store.retire_set("v0", "h1", "p/v0/h1/").await.unwrap();
        assert!(store
            .retired_due(Duration::from_secs(3600), 10)
            .await
            .unwrap()
            .is_empty());
        let due = store.retired_due(Duration::ZERO, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].prefix, "p/v0/h1/");
        store.unretire_set("v0", "h1").await.unwrap();
        assert!(store
            .retired_due(Duration::ZERO, 10)
            .await
            .unwrap()
            .is_empty());
        b.finish().await;
    }
}

#[tokio::test]
async fn a_cancel_fences_out_the_running_worker_and_nothing_is_claimed_again() {
    for b in backends().await {
        let store = &b.store;
        seed_with(store, 3, Some("https://ops.example/hook")).await;
        // v0 is being worked on; v1 finished published; v2 waits to be submitted.
        let c = store.claim(LEASE).await.unwrap().unwrap();
        assert_eq!(c.id, "v0");
        let c1 = store.claim(LEASE).await.unwrap().unwrap();
        assert!(store
            .update(&c1, Update::to(State::Published))
            .await
            .unwrap());
        let published_events = store.outbox_of_asset("a1").await.unwrap().len();
        let done = store.cancel("a1", "cancelled by test").await.unwrap();
        assert_eq!(done, ["v0", "v1", "v2"]);
        // The running worker can neither renew nor write.
        assert!(!store.renew(&c, LEASE, Some(50.0)).await.unwrap());
        assert!(!store
            .update(&c, Update::to(State::Submitted))
            .await
            .unwrap());
        // Not submitted, and never handed out again.
        assert!(store.claim(LEASE).await.unwrap().is_none());
        assert!(!store.nudge("v2").await.unwrap());
        for v in store.variations_of("a1").await.unwrap() {
            assert_eq!(v.state, State::Cancelled, "{}", v.id);
            assert_eq!(
                v.reason().unwrap().code,
                crate::reason::ReasonCode::Cancelled
            );
        }
        let events = store.outbox_of_asset("a1").await.unwrap();
        let cancelled: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == "asset.cancelled")
            .collect();
        assert_eq!(cancelled.len(), 3);
        assert_eq!(events.len(), published_events + 3);
        // A second cancel changes nothing.
        assert!(store.cancel("a1", "again").await.unwrap().is_empty());
        assert_eq!(
            store.outbox_of_asset("a1").await.unwrap().len(),
            events.len()
        );
        assert_eq!(
            store.times_entered("v0", State::Cancelled).await.unwrap(),
            1
        );
        b.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_outbox_drainers_never_lease_the_same_row() {
    for b in backends().await {
        let store = &b.store;
        let now = now_ms();
        let mut tx = store.begin_immediate().await.unwrap();
        for i in 0..40 {
            let item = NewOutbox {
                id: format!("evt_{i:02}"),
                kind: "callback",
                event_type: "asset.failed".into(),
                asset_id: None,
                variation_id: None,
                url: "https://ops.example/hook".into(),
                body: "{}".into(),
            };
            outbox::insert(&mut tx, &item, now).await.unwrap();
        }
        tx.commit().await.unwrap();
        let drainers: Vec<_> = (0..6)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let rows = s.claim_outbox(3, Duration::from_secs(600)).await.unwrap();
                        if rows.is_empty() {
                            return got;
                        }
                        got.extend(rows.into_iter().map(|r| r.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for d in drainers {
            all.extend(d.await.unwrap());
        }
        all.sort();
        let leased = all.len();
        all.dedup();
        assert_eq!(all.len(), 40, "every row leased");
        assert_eq!(leased, 40, "no row leased twice");
        b.finish().await;
    }
}

#[tokio::test]
async fn the_generator_cost_counts_every_task_the_resubmitted_ones_included() {
    for b in backends().await {
        let store = &b.store;
        seed(store, 2).await;
        assert_eq!(store.generator_cost_usd().await.unwrap(), 0.0);
        let c = store.claim(LEASE).await.unwrap().unwrap();
        let earlier = |uuid: &str, cost| PreviousTask {
            task_uuid: uuid.into(),
            cost,
            reason_code: crate::reason::ReasonCode::UploadMissing,
            at: 1,
        };
        let u = Update {
            cost: Some(Some(0.5)),
            previous_tasks: Some(vec![earlier("old-1", Some(0.25)), earlier("old-2", None)]),
            ..Default::default()
        };
        assert!(store.update(&c, u).await.unwrap());
        let c = store.claim(LEASE).await.unwrap().unwrap();
        let u = Update {
            previous_tasks: Some(vec![earlier("old-3", Some(1.0))]),
            ..Default::default()
        };
        assert!(store.update(&c, u).await.unwrap());
        assert_eq!(store.generator_cost_usd().await.unwrap(), 1.75);
        b.finish().await;
    }
}

#[tokio::test]
async fn a_schema_migrated_by_a_newer_release_is_refused_naming_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    drop(
        Store::connect(&url, 1, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    // What a newer release's migration leaves behind.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9001, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let err = match Store::connect(&url, 1, Duration::from_secs(5)).await {
        Err(e) => e,
        Ok(_) => panic!("a newer schema was accepted"),
    };
    assert!(
        matches!(err, StoreError::SchemaNewer { applied: 9001, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer than this reelay"), "{err}");
}
