//! The one doorway for every ffmpeg and ffprobe run.
//!
//! Each run: an argument list (no shell), a slot from a semaphore sized to
//! the CPUs, a deadline that kills the child, a guard that kills it when the
//! caller's future is dropped, and a bounded tail of stderr kept for errors.
//! The child is always reaped by the thread that reads its output
//! (ffmpeg-sidecar does not reap on drop).

mod args;
mod limits;
mod output;
mod run;

pub use args::{input_args, own_input_args, path_arg, reference_input_args};
pub use limits::{ChildLimits, Limit};
pub use run::{ffmpeg_major_version, Runner};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Demuxers an untrusted input may be opened with: what generators deliver
/// (MP4/MOV, WebM/Matroska). Keeps playlist-style formats (HLS, concat) that
/// can pull in other files away from user media.
pub const UNTRUSTED_DEMUXERS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm";
/// ffprobe may also look at the stills we produce.
const PROBE_DEMUXERS: &str =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,image2,jpeg_pipe,png_pipe,webp_pipe";
/// Our own outputs: the stills and media formats plus HLS sets.
const OWN_DEMUXERS: &str =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,image2,jpeg_pipe,png_pipe,webp_pipe,hls,mpegts";
/// The raw reference frames the transcode writes for QC.
const REFERENCE_DEMUXERS: &str = "nut";
const PROTOCOLS: &str = "file,pipe";

const TAIL_LINES: usize = 40;
const TAIL_BYTES: usize = 8 * 1024;
const LOG_LINES: usize = 20_000;
const LOG_BYTES: usize = 4 * 1024 * 1024;
const LINE_MAX: usize = 1024;
/// Lines of the stderr tail shown in an error's `Display`.
const DISPLAY_LINES: usize = 3;

/// A progress callback. It runs on the thread reading ffmpeg's output: keep it quick.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// One ffmpeg progress report (about every 0.5 s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Output time / input duration, 0-100. None when the duration is unknown.
    pub percent: Option<f64>,
    pub fps: f32,
    /// Times real time (2.0 = twice as fast as playback).
    pub speed: f32,
    /// Media time written so far.
    pub time_secs: f64,
}

/// How to run one ffmpeg command.
#[derive(Clone)]
pub struct RunOptions {
    /// Names the run in logs and errors ("transcode", "ssim").
    pub label: String,
    /// The child is killed once it has run this long (queueing for a slot
    /// does not count).
    pub deadline: Duration,
    /// Input duration, to turn progress time into a percentage. None: taken
    /// from ffmpeg's "Duration:" line of input #0 when it prints one.
    pub input_duration_secs: Option<f64>,
    pub on_progress: Option<ProgressFn>,
    /// The inputs are user media: every `-i` gets `-protocol_whitelist
    /// file,pipe -format_whitelist` [`UNTRUSTED_DEMUXERS`] in front of it (these
    /// are input options: they only apply to the next `-i`). Inserted here
    /// unless already present, so callers may also build inputs with
    /// [`input_args`]. Leave false for lavfi sources.
    pub untrusted_input: bool,
}

impl RunOptions {
    pub fn new(label: impl Into<String>, deadline: Duration) -> Self {
        Self {
            label: label.into(),
            deadline,
            input_duration_secs: None,
            on_progress: None,
            untrusted_input: false,
        }
    }

    pub fn input_duration(mut self, secs: f64) -> Self {
        self.input_duration_secs = Some(secs);
        self
    }

    pub fn progress(mut self, on_progress: Option<ProgressFn>) -> Self {
        self.on_progress = on_progress;
        self
    }

    pub fn untrusted(mut self) -> Self {
        self.untrusted_input = true;
        self
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("label", &self.label)
            .field("deadline", &self.deadline)
            .field("input_duration_secs", &self.input_duration_secs)
            .field("on_progress", &self.on_progress.is_some())
            .field("untrusted_input", &self.untrusted_input)
            .finish()
    }
}

/// What a successful run left behind.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The last stderr lines (at most 40 lines / 8 KiB), progress lines excluded.
    pub stderr_tail: Vec<String>,
    /// Every stderr line except progress lines, with ffmpeg's level tag
    /// ("[info]", "[warning]", "[error]"), oldest first. Bounded (20,000
    /// lines / 4 MiB): the oldest lines are dropped first, so end-of-run
    /// summaries survive.
    pub log: Vec<String>,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{binary} was not found: install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg) or set media.ffmpeg_path / media.ffprobe_path")]
    NotFound { binary: String },
    #[error("could not start {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{label} took longer than {after:?} and was stopped{}",
        tail_suffix(stderr_tail)
    )]
    Timeout {
        label: String,
        after: Duration,
        stderr_tail: Vec<String>,
    },
    /// The run showed no progress (output time, input read) for
    /// `media.stall_secs`: stopped with SIGTERM, then SIGKILL. Not the
    /// input's fault as such: the step is retried.
    #[error(
        "{label} made no progress for {}s and was stopped{}",
        after.as_secs(),
        tail_suffix(stderr_tail)
    )]
    Stalled {
        label: String,
        after: Duration,
        stderr_tail: Vec<String>,
    },
    #[error("{label} failed ({}){}", exit_text(*code), tail_suffix(stderr_tail))]
    Failed {
        label: String,
        code: Option<i32>,
        stderr_tail: Vec<String>,
    },
    /// The child ran into its memory or CPU-time limit (`media.*_limit_*`):
    /// the input asked for more than a master may.
    #[error("{label} exceeded its {limit}")]
    LimitExceeded {
        label: String,
        limit: Limit,
        stderr_tail: Vec<String>,
    },
    #[error("I/O error around an ffmpeg run: {0}")]
    Io(#[from] std::io::Error),
    /// ffmpeg/ffprobe reported success but its output is missing or unreadable.
    #[error("unexpected ffmpeg output: {0}")]
    BadOutput(String),
    /// The media opened but cannot be used as asked (e.g. a master without video).
    #[error("the media cannot be used: {0}")]
    UnusableInput(String),
    /// The request itself cannot be run (bad plan or clip spec): a bug in the caller.
    #[error("invalid media request: {0}")]
    Invalid(String),
}

impl ProcessError {
    /// True when the input media is to blame (undecodable, unsupported, or
    /// too slow to process): the client must act. False when the operator or
    /// we must (ffmpeg missing, disk, unexpected output, a bad request built
    /// by our own code).
    pub fn is_input_fault(&self) -> bool {
        matches!(
            self,
            Self::Failed { .. }
                | Self::Timeout { .. }
                | Self::UnusableInput(_)
                | Self::LimitExceeded { .. }
        )
    }

    /// The stderr tail, when the error carries one.
    pub fn stderr_tail(&self) -> &[String] {
        match self {
            Self::Failed { stderr_tail, .. }
            | Self::Timeout { stderr_tail, .. }
            | Self::Stalled { stderr_tail, .. }
            | Self::LimitExceeded { stderr_tail, .. } => stderr_tail,
            _ => &[],
        }
    }

    /// ffmpeg's own words for what went wrong, fit to show a client: the
    /// error-level lines of the tail without level tags (or the last line
    /// when none is tagged), with our folders cut from file paths. Other
    /// variants give their message.
    pub fn reason(&self) -> String {
        if let Self::LimitExceeded { .. } | Self::Stalled { .. } = self {
            // ffmpeg's words would be a failed allocation somewhere deep.
            return self.to_string();
        }
        let tail = self.stderr_tail();
        let errors: Vec<String> = tail
            .iter()
            .filter_map(|l| strip_level(l, &["[error]", "[fatal]"]))
            .map(hide_folders)
            .collect();
        if !errors.is_empty() {
            return errors.join("; ");
        }
        match tail.last() {
            Some(line) => hide_folders(line),
            None => hide_folders(&self.to_string()),
        }
    }
}

/// "/tmp/reelay-1/master.mp4: Invalid data" -> "master.mp4: Invalid data".
pub fn hide_folders(line: &str) -> String {
    line.split(' ')
        .map(|word| match word.strip_prefix('/') {
            Some(rest) => rest.rsplit('/').next().unwrap_or(rest),
            None => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn strip_level<'a>(line: &'a str, levels: &[&str]) -> Option<&'a str> {
    levels
        .iter()
        .find_map(|lvl| line.find(lvl).map(|i| line[i + lvl.len()..].trim_start()))
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "terminated by a signal".to_owned(),
    }
}

fn tail_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let start = tail.len().saturating_sub(DISPLAY_LINES);
    format!(": {}", tail[start..].join(" | "))
}

/// The filter names in `ffmpeg -filters` output: lines of flags, name and
/// pads (" TS. ssim   VV->V   Calculate the SSIM..."), the legend skipped.
pub fn parse_filter_names(listing: &str) -> std::collections::HashSet<String> {
    listing
        .lines()
        .filter_map(|line| {
            let mut t = line.split_whitespace();
            let (flags, name, pads) = (t.next()?, t.next()?, t.next()?);
            let is_flags = !flags.is_empty() && flags.chars().all(|c| ".TSC".contains(c));
            (is_flags && pads.contains("->")).then(|| name.to_owned())
        })
        .collect()
}

/// Where a run's outputs go; removes them on drop unless kept.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub(crate) fn new(prefix: &str) -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "reelay-{prefix}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove scratch folder");
        }
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
