//! Arrival: the master is in the bucket; it is downloaded (streaming,
//! SHA-256), probed, read packet by packet (a cut upload can still probe,
//! the index coming first in a faststart MP4) and compared with what was
//! asked for → `arrived` or `rejected`. Generated masters are compared with
//! the request; a master uploaded by hand is its own request, so it only
//! has to be there, of a sane size, readable and have video.
//!
//! [`inspect`] is the media half, shared with `reelay process`.

use super::{Ctx, Outcome};
use crate::domain::master_key;
use crate::jobs::model::{Asset, Update, Variation};
use crate::jobs::State;
use crate::media::probe::Probe;
use crate::media::process::{input_args, ProcessError, RunOptions, Runner};
use crate::policy::{self, upload_extension, MasterSpec};
use crate::reason::ReasonCode;
use crate::storage::{ObjectKey, StorageError};
use crate::time::now_ms;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a master waiting for disk space looks again.
const DISK_RECHECK_MS: i64 = 5000;

/// What the arrival read found.
#[derive(Debug, Clone)]
pub enum Inspection {
    Verified(Probe),
    /// Turned down; `probe` is there when ffprobe could read the file.
    Rejected {
        code: ReasonCode,
        message: String,
        probe: Option<Probe>,
    },
}

/// A master's size is within the policy.
pub fn size_problem(size: u64, max: u64) -> Option<String> {
    (size == 0 || size > max).then(|| format!("the master is {size} bytes (allowed 1..={max})"))
}

/// The decision on a probed master: it matches `expected` (a generation's
/// request), or for an upload (`None`), it has video.
pub fn judge(probe: &Probe, expected: Option<&MasterSpec>, tolerance_secs: f64) -> Inspection {
    let rejected = |message: String| Inspection::Rejected {
        code: ReasonCode::MasterMismatch,
        message,
        probe: Some(probe.clone()),
    };
    match expected {
        Some(expected) => {
            let mismatches = policy::master_mismatches(probe, expected, tolerance_secs);
            if mismatches.is_empty() {
                Inspection::Verified(probe.clone())
            } else {
                rejected(format!(
                    "the master does not match the request: {}",
                    mismatches.join("; ")
                ))
            }
        }
        None if probe.video.is_none() => rejected("the master has no video stream".into()),
        None => Inspection::Verified(probe.clone()),
    }
}

/// The whole arrival read of a master on local disk: size, ffprobe, every
/// packet, and the comparison. `Err` is ours (ffmpeg missing, disk).
pub async fn inspect(
    runner: &Runner,
    path: &Path,
    size: u64,
    expected: Option<&MasterSpec>,
    settings: &crate::config::Settings,
) -> Result<Inspection, ProcessError> {
    if let Some(why) = size_problem(size, settings.policy.max_master_bytes) {
        return Ok(Inspection::Rejected {
            code: ReasonCode::MasterSize,
            message: why,
            probe: None,
        });
    }
    if let Some(what) = crate::media::probe::not_a_video(path)? {
        return Ok(Inspection::Rejected {
            code: ReasonCode::MasterUnreadable,
            message: format!("the master is not a video: it is {what}"),
            probe: None,
        });
    }
    let deadline = Duration::from_secs(settings.media.transcode_timeout_secs);
    // The probe and the packet read go side by side (neither decodes).
    let (probe, integrity) = tokio::join!(runner.ffprobe(path), incomplete(runner, path, deadline));
    let probe = match probe {
        Ok(p) => p,
        Err(e) if e.is_input_fault() => {
            return Ok(Inspection::Rejected {
                code: ReasonCode::MasterUnreadable,
                message: format!("ffprobe cannot read the master: {}", e.reason()),
                probe: None,
            })
        }
        Err(e) => return Err(e),
    };
    if let Some(problem) = integrity? {
        return Ok(Inspection::Rejected {
            code: ReasonCode::MasterIncomplete,
            message: format!("the master is truncated or corrupt: {problem}"),
            probe: None,
        });
    }
    Ok(judge(
        &probe,
        expected,
        settings.policy.duration_tolerance_secs,
    ))
}

/// Reads every packet of `path` (stream copy to nowhere) and returns
/// ffmpeg's complaints, if any: "partial file", "File ended prematurely".
async fn incomplete(
    runner: &Runner,
    path: &Path,
    deadline: Duration,
) -> Result<Option<String>, ProcessError> {
    let mut args = input_args(path, true);
    args.extend(["-map", "0", "-c", "copy", "-f", "null", "-"].map(String::from));
    let opts = RunOptions::new("master integrity", deadline).untrusted();
    let log = match runner.ffmpeg(args, opts).await {
        Ok(out) => out.log,
        Err(e) if e.is_input_fault() => return Ok(Some(e.reason())),
        Err(e) => return Err(e),
    };
    let problems: Vec<&str> = log
        .iter()
        .filter_map(|l| {
            ["[error]", "[fatal]"]
                .iter()
                .find_map(|lvl| l.find(lvl).map(|i| l[i + lvl.len()..].trim()))
        })
        .collect();
    Ok((!problems.is_empty()).then(|| {
        let shown: Vec<&str> = problems.iter().rev().take(3).rev().copied().collect();
        shown.join("; ")
    }))
}

/// A generated master is in the bucket (`size`, `etag` from its HEAD).
pub async fn generated(
    ctx: &Ctx<'_>,
    v: &Variation,
    asset: &Asset,
    size: u64,
    etag: Option<&str>,
) -> Outcome {
    let expected = match super::master_spec(asset, v) {
        Some(e) => e,
        None => return Outcome::Retry(anyhow::anyhow!("no master description for a generation")),
    };
    let ext = expected.container.as_str();
    arrive(
        ctx,
        v,
        size,
        etag,
        &format!("master.{ext}"),
        Some(&expected),
        "master",
    )
    .await
}

/// A master uploaded by hand: no generation to wait for.
pub async fn upload(ctx: &Ctx<'_>, v: &Variation) -> Outcome {
    let key = crate::tri!(ObjectKey::parse(&v.master_key));
    let bucket = &ctx.settings.storage.masters_bucket;
    let Some(meta) = crate::tri!(
        ctx.objects.head(bucket, &key).await,
        "looking for the master"
    ) else {
        return Outcome::fail(
            ReasonCode::MasterMissing,
            "the uploaded master is no longer in the bucket",
        );
    };
    let dir = ctx.work(v);
    if dir.exists() {
        // A previous version's files must not be mistaken for this one's.
        crate::tri!(tokio::fs::remove_dir_all(&dir).await);
    }
    let name = format!("master.{}", upload_extension(&v.master_key));
    arrive(
        ctx,
        v,
        meta.size,
        meta.etag.as_deref(),
        &name,
        None,
        "uploaded master",
    )
    .await
}

/// Download, inspect, and record what arrived either way.
async fn arrive(
    ctx: &Ctx<'_>,
    v: &Variation,
    size: u64,
    etag: Option<&str>,
    file_name: &str,
    expected: Option<&MasterSpec>,
    what: &str,
) -> Outcome {
    if let Some(why) = size_problem(size, ctx.settings.policy.max_master_bytes) {
        return Outcome::reject(ReasonCode::MasterSize, why);
    }
    let dir = ctx.work(v);
    crate::tri!(tokio::fs::create_dir_all(&dir).await);
    let free = crate::tri!(
        crate::jobs::workdir::free_bytes(&dir),
        "reading the work folder's free space"
    );
    let margin = ctx.settings.data.free_space_margin_bytes;
    if let Some(why) = crate::jobs::workdir::space_shortfall(free, size, margin) {
        tracing::warn!(variation = %v.id, free, size, margin, "not enough disk space to download the master; waiting");
        return Outcome::Wait {
            at: now_ms() + DISK_RECHECK_MS,
            update: Update {
                stage_detail: Some(Some(why)),
                ..Default::default()
            },
        };
    }
    let path = dir.join(file_name);
    let bucket = &ctx.settings.storage.masters_bucket;
    let key = crate::tri!(ObjectKey::parse(&v.master_key));
    // Take the master into a key only reelay writes first, then read that
    // copy: what is verified, recorded and later reprocessed is one set of
    // bytes, whatever is written to the upload key afterwards.
    let kept = crate::tri!(ObjectKey::parse(&master_key::verified(&v.master_key)));
    crate::tri!(
        ctx.objects.copy_within(bucket, &key, &kept, size).await,
        "keeping a copy of the master"
    );
    let got = crate::tri!(
        ctx.objects.download_to_file(bucket, &kept, &path).await,
        "downloading the master"
    );
    let identity = Update {
        master_size: Some(got.size as i64),
        master_sha256: Some(got.sha256_hex.clone()),
        master_etag: etag.map(|e| e.trim_matches('"').to_string()),
        ..Default::default()
    };
    let inspection = crate::tri!(
        inspect(ctx.runner, &path, got.size, expected, ctx.settings).await,
        "reading the master"
    );
    match inspection {
        Inspection::Rejected {
            code,
            message,
            probe,
        } => Outcome::reject(code, message).recording(Update {
            master_probe: probe,
            ..identity
        }),
        Inspection::Verified(probe) => {
            let video = probe.video.as_ref();
            let note = format!(
                "{what} verified: {}x{}, {:.2} s, {} bytes, sha256 {}",
                video.map(|v| v.width).unwrap_or(0),
                video.map(|v| v.height).unwrap_or(0),
                probe.duration_secs,
                got.size,
                &got.sha256_hex[..12]
            );
            Outcome::advance(Update {
                arrived_at: Some(now_ms()),
                master_probe: Some(probe),
                ..Update {
                    master_size: identity.master_size,
                    master_sha256: identity.master_sha256,
                    master_etag: identity.master_etag,
                    ..Update::to(State::Arrived).note(note)
                }
            })
        }
    }
}

/// The verified master on local disk, fetched again if the work folder was
/// lost (another machine, a wiped disk). Its SHA-256 must be the one
/// arrival recorded.
pub async fn local_master(ctx: &Ctx<'_>, v: &Variation) -> anyhow::Result<PathBuf> {
    let dir = ctx.work(v);
    let mut found = None;
    if let Ok(mut rd) = tokio::fs::read_dir(&dir).await {
        while let Some(e) = rd.next_entry().await? {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("master.") {
                found = Some(e.path());
            }
        }
    }
    let expected_sha = v.master_sha256.clone().unwrap_or_default();
    if let Some(p) = found {
        let (sha, _) = crate::publish::digest_file(&p).await?;
        if sha == expected_sha {
            return Ok(p);
        }
    }
    tokio::fs::create_dir_all(&dir).await?;
    let path = dir.join("master.bin");
    let bucket = &ctx.settings.storage.masters_bucket;
    let kept = ObjectKey::parse(&master_key::verified(&v.master_key))?;
    let got = match ctx.objects.download_to_file(bucket, &kept, &path).await {
        Err(StorageError::NotFound) => {
            // Rows verified before arrival kept a copy read the upload key.
            let key = ObjectKey::parse(&v.master_key)?;
            ctx.objects.download_to_file(bucket, &key, &path).await?
        }
        other => other?,
    };
    anyhow::ensure!(
        got.sha256_hex == expected_sha,
        "the master in the bucket changed since it was verified (sha256 {} != {})",
        got.sha256_hex,
        expected_sha
    );
    Ok(path)
}
