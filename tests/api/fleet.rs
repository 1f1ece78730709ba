//! The fleet under chaos (Postgres only): one `reelay serve --role api`
//! (the embedded S3 and the simulator) and three `reelay worker` processes on
//! one Postgres schema run a campaign of six variations while a random worker
//! is SIGKILLed and started again every few seconds (a seeded RNG; the seed
//! is printed, `REELAY_FLEET_SEED` replays it), and one worker is SIGTERMed
//! and must drain on its own. In the end every variation is published
//! exactly once from exactly one Runware task, and no ffmpeg is left behind.

use crate::drain::{exits_within, sigterm};
use crate::helpers::*;
use crate::roles::{Proc, Stack};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Short leases, so a killed worker's steps are taken over within seconds.
const LEASE_SECS: &str = "4";
const DRAIN_SECS: u64 = 5;
/// Kills (and the one SIGTERM) before the fleet is left to finish.
const CHAOS_EVENTS: usize = 8;

/// Every ffmpeg or ffprobe process whose command line names `dir` (the
/// test's folder: work files, simulator renders), as "pid cmdline".
fn media_processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter_map(|e| {
                    let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                    if !matches!(comm.trim(), "ffmpeg" | "ffprobe") {
                        return None;
                    }
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    cmd.contains(&needle)
                        .then(|| format!("{} {cmd}", e.file_name().to_string_lossy()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the end of a run must look like; every problem found, by name.
fn problems(assets: &[Value], tasks: &[String], expected: usize) -> Vec<String> {
    let mut out = Vec::new();
    let variations: Vec<&Value> = assets
        .iter()
        .flat_map(|a| a["variations"].as_array().into_iter().flatten())
        .collect();
    if variations.len() != expected {
        out.push(format!(
            "{} variations, expected {expected}",
            variations.len()
        ));
    }
    let mut task_uuids = BTreeSet::new();
    for v in &variations {
        let id = v["id"].as_str().unwrap_or("?");
        if v["state"] != "published" {
            out.push(format!("{id} ended {}", v["state"]));
        }
        let published = changes_into(v, "published");
        if published != 1 {
            out.push(format!("{id} entered published {published} times"));
        }
        if v.get("previous_tasks").is_some_and(|p| !p.is_null()) {
            out.push(format!("{id} was resubmitted: {}", v["previous_tasks"]));
        }
        task_uuids.insert(v["task_uuid"].as_str().unwrap_or("").to_string());
    }
    let created: BTreeSet<String> = tasks.iter().cloned().collect();
    if tasks.len() != variations.len() || created != task_uuids {
        out.push(format!(
            "the simulator has tasks {tasks:?} for the variations' {task_uuids:?}"
        ));
    }
    out
}

async fn views(http: &reqwest::Client, url: &str, ids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(get_asset(http, url, id).await);
    }
    out
}

fn all_done(assets: &[Value]) -> bool {
    assets.iter().all(|a| a["status"] != "processing")
}

/// One worker slot: its data dir (kept across restarts, as a machine's
/// volume) and the process running on it now.
struct Slot {
    /// Its data dir's name in the stack's folder (kept across restarts).
    name: String,
    data: PathBuf,
    proc: Proc,
}

/// Whether the slot's worker is in the middle of a media step (a work
/// folder of a variation exists).
fn busy(slot: &Slot) -> bool {
    std::fs::read_dir(slot.data.join("work")).is_ok_and(|mut rd| rd.next().is_some())
}

#[tokio::test]
async fn a_campaign_survives_workers_killed_at_random_and_publishes_each_variation_once() {
    if !on_postgres() {
        eprintln!("job store is SQLite: the fleet test shares one Postgres; skipped");
        return;
    }
    let seed = std::env::var("REELAY_FLEET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("fleet chaos seed: {seed} (REELAY_FLEET_SEED={seed} replays the schedule)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let stack = Stack::start().await;
    let (http, url, dir) = (&stack.http, stack.url.as_str(), stack.dir.path());

    let drain = DRAIN_SECS.to_string();
    let env = [
        ("REELAY__WORKER__LEASE_SECS", LEASE_SECS),
        ("REELAY__WORKER__CONCURRENCY", "1"),
        ("REELAY__WORKER__DRAIN_SECS", drain.as_str()),
    ];
    let start = |name: &str| stack.worker(name, &[], &env);
    let mut slots: Vec<Slot> = (0..3)
        .map(|n| {
            let name = format!("worker{n}");
            Slot {
                proc: start(&name),
                data: dir.join(&name),
                name,
            }
        })
        .collect();

    // Two assets of three variations: six masters of 3 s, default profile.
    let mut ids = Vec::new();
    for n in 0..2 {
        let mut body = request(3);
        body["campaign"] = json!("fleet");
        body["generation"]["numberResults"] = json!(3);
        body["generation"]["positivePrompt"] = json!(format!("fleet chaos asset {n}"));
        ids.push(create_at(http, url, &body).await);
    }

    // The chaos: every 2-5 s a random worker is killed outright and started
    // again on its data dir; one event (at a random point) is a SIGTERM
    // instead, which must drain and exit on its own.
    let term_at = rng.random_range(1..CHAOS_EVENTS);
    let mut drained = false;
    for event in 0..CHAOS_EVENTS {
        let pause = rng.random_range(2000..5000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if all_done(&views(http, url, &ids).await) {
            break;
        }
        let n = rng.random_range(0..slots.len());
        if event == term_at {
            // Prefer a worker that is running a media step, so the drain has
            // something to finish or hand back.
            let n = (0..slots.len())
                .map(|k| (n + k) % slots.len())
                .find(|&k| busy(&slots[k]))
                .unwrap_or(n);
            let slot = &mut slots[n];
            eprintln!("event {event}: SIGTERM worker {n} (busy: {})", busy(slot));
            sigterm(&slot.proc.0);
            let status = exits_within(&mut slot.proc.0, Duration::from_secs(DRAIN_SECS + 20));
            assert!(status.success(), "the drained worker exited {status:?}");
            drained = true;
            slot.proc = start(&slot.name);
        } else {
            let slot = &mut slots[n];
            eprintln!("event {event}: SIGKILL worker {n} (busy: {})", busy(slot));
            slot.proc.0.kill().unwrap();
            slot.proc.0.wait().unwrap();
            slot.proc = start(&slot.name);
        }
    }

    // Left alone, the fleet finishes the campaign.
    let limit = Duration::from_secs(420);
    let begun = Instant::now();
    let assets = loop {
        let assets = views(http, url, &ids).await;
        if all_done(&assets) {
            break assets;
        }
        assert!(
            begun.elapsed() < limit,
            "the campaign did not finish in {limit:?} (seed {seed}): {assets:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Nothing runs any more, so no ffmpeg may still name this test's folder
    // (an orphan of a killed worker would); the kernel's kill of a dead
    // worker's children may take a moment to land.
    let settle = Instant::now();
    let mut leftovers = media_processes_naming(dir);
    while !leftovers.is_empty() && settle.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        leftovers = media_processes_naming(dir);
    }
    let tasks = simulator_tasks(&stack.api_data());
    drop(slots);

    assert!(drained, "the SIGTERM event ran (seed {seed})");
    let found = problems(&assets, &tasks, 6);
    assert!(found.is_empty(), "seed {seed}: {found:#?}\n{assets:#?}");
    assert!(leftovers.is_empty(), "ffmpeg left behind: {leftovers:#?}");
}

/// The end-of-run check trips on a double publish, a lost or stuck
/// variation and a second task, and not on a note from `published` to itself.
#[test]
fn the_end_of_run_check_sees_a_double_publish_a_lost_variation_and_a_second_task() {
    let step = |from: &str, to: &str| json!({"from": from, "to": to});
    let variation = |id: &str, task: &str, state: &str, history: Vec<Value>| json!({"id": id, "task_uuid": task, "state": state, "history": history});
    let once = vec![
        step("checking", "publishing"),
        step("publishing", "published"),
        step("published", "published"),
    ];
    let good = json!([{"variations": [variation("a", "t1", "published", once.clone())]}]);
    let good = good.as_array().unwrap();
    assert!(problems(good, &["t1".into()], 1).is_empty());

    let mut twice = once.clone();
    twice.extend([
        step("published", "publishing"),
        step("publishing", "published"),
    ]);
    let double = json!([{"variations": [variation("a", "t1", "published", twice)]}]);
    let found = problems(double.as_array().unwrap(), &["t1".into()], 1);
    assert_eq!(found, ["a entered published 2 times"]);

    let stuck = json!([{"variations": [variation("a", "t1", "transcoding", vec![])]}]);
    assert_eq!(
        problems(stuck.as_array().unwrap(), &["t1".into()], 1).len(),
        2
    );
    assert_eq!(
        problems(good, &["t1".into()], 2).len(),
        1,
        "a lost variation"
    );
    assert_eq!(
        problems(good, &["t1".into(), "t2".into()], 1).len(),
        1,
        "a second task"
    );
}
