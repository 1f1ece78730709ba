//! `reelay-bench-queue`: the job store on its own, for `scripts/bench-queue.sh`.
//! Not part of the service and not a test.
//!
//! `seed` adds assets of one variation each to a store, in batches of one
//! transaction; `work` claims runnable variations and completes each step the
//! way a submit step that waits on the generator does (`requested` →
//! `submitted`, next run a day away), with the same `claim` and fenced
//! `update` the workers use, until none is left, and prints one JSON line
//! with how many it took and when it started and ended.

use clap::{Parser, Subcommand};
use reelay::jobs::model::{Brief, NewVariation};
use reelay::jobs::store::{now_ms, Source};
use reelay::jobs::{Asset, State, Store, Update};
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    /// `sqlite://…` or `postgres://…`, as `database.url` takes it.
    #[arg(long)]
    database: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Adds `assets` assets, `per_campaign` to a campaign, numbered from `from`.
    Seed {
        #[arg(long)]
        assets: u64,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 50)]
        per_campaign: u64,
        /// Assets per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u64,
    },
    /// Claims and completes steps until none is runnable.
    Work {
        /// Waits until this Unix time in milliseconds, so several processes
        /// start together after connecting.
        #[arg(long, default_value_t = 0)]
        start_at_ms: i64,
        #[arg(long, default_value_t = 30)]
        lease_secs: u64,
    },
}

/// The asset id of number `n`: the API's shape (`ast_` and 20 hex digits).
fn asset_id(n: u64) -> String {
    format!("ast_{n:020x}")
}

fn asset(n: u64, per_campaign: u64, created_at: i64) -> Asset {
    Asset {
        id: asset_id(n),
        campaign: format!("bench-{}", n / per_campaign.max(1)),
        profile: "default".into(),
        brief: Brief::Generation(Box::default()),
        callback_url: None,
        ttl_secs: 86_400,
        created_at,
        qc: None,
        source: Source::Generated,
        destinations: Vec::new(),
        vast: Default::default(),
        captions: Vec::new(),
    }
}

fn variation(n: u64) -> Vec<NewVariation> {
    vec![NewVariation {
        id: format!("{}_v0", asset_id(n)),
        idx: 0,
        task_uuid: uuid::Uuid::new_v4().to_string(),
        webhook_token_sha256: "0".repeat(64),
        master_key: format!("masters/bench/{}/v0/master.mp4", asset_id(n)),
    }]
}

async fn seed(
    store: &Store,
    from: u64,
    count: u64,
    per_campaign: u64,
    batch: u64,
) -> anyhow::Result<()> {
    let now = now_ms();
    let mut n = from;
    while n < from + count {
        let end = (n + batch.max(1)).min(from + count);
        // Created a millisecond apart, in order, as a stream of requests would be.
        let rows: Vec<(Asset, Vec<NewVariation>)> = (n..end)
            .map(|i| {
                (
                    asset(i, per_campaign, now - (from + count - i) as i64),
                    variation(i),
                )
            })
            .collect();
        let refs: Vec<(&Asset, &[NewVariation])> =
            rows.iter().map(|(a, v)| (a, v.as_slice())).collect();
        store.create_assets(&refs).await?;
        n = end;
    }
    Ok(())
}

async fn work(store: &Store, start_at_ms: i64, lease: Duration) -> anyhow::Result<()> {
    let wait = start_at_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let started = now_ms();
    let (mut done, mut lost) = (0u64, 0u64);
    while let Some(claim) = store.claim(lease).await? {
        let update = Update {
            next_run_at: Some(now_ms() + 86_400_000),
            note: Some("queue benchmark".into()),
            ..Update::to(State::Submitted)
        };
        if store.update(&claim, update).await? {
            done += 1;
        } else {
            lost += 1;
        }
    }
    let ended = now_ms();
    println!(
        "{}",
        serde_json::json!({"done": done, "lost": lost, "started_ms": started, "ended_ms": ended})
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let store = Store::connect(&cli.database, 4, Duration::from_secs(30)).await?;
    match cli.command {
        Command::Seed {
            assets,
            from,
            per_campaign,
            batch,
        } => seed(&store, from, assets, per_campaign, batch).await,
        Command::Work {
            start_at_ms,
            lease_secs,
        } => work(&store, start_at_ms, Duration::from_secs(lease_secs)).await,
    }
}
