//! The one doorway for every ffmpeg and ffprobe run.
//!
//! Each run: an argument list (no shell), a slot from a semaphore sized to
//! the CPUs, a deadline that kills the child, a guard that kills it when the
//! caller's future is dropped, and a bounded tail of stderr kept for errors.
//! The child is always reaped by the thread that reads its output
//! (ffmpeg-sidecar does not reap on drop).

use super::probe::{self, Probe};
use super::MediaConfig;
use ffmpeg_sidecar::child::FfmpegChild;
use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::FfmpegEvent;
use ffmpeg_sidecar::ffmpeg_time_duration::FfmpegTimeDuration;
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;

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
    #[error("{label} failed ({}){}", exit_text(*code), tail_suffix(stderr_tail))]
    Failed {
        label: String,
        code: Option<i32>,
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
            Self::Failed { .. } | Self::Timeout { .. } | Self::UnusableInput(_)
        )
    }

    /// The stderr tail, when the error carries one.
    pub fn stderr_tail(&self) -> &[String] {
        match self {
            Self::Failed { stderr_tail, .. } | Self::Timeout { stderr_tail, .. } => stderr_tail,
            _ => &[],
        }
    }

    /// ffmpeg's own words for what went wrong, fit to show a client: the
    /// error-level lines of the tail without level tags (or the last line
    /// when none is tagged), with our folders cut from file paths. Other
    /// variants give their message.
    pub fn reason(&self) -> String {
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
fn hide_folders(line: &str) -> String {
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

/// A path as one ffmpeg argument. Relative paths get a `file:` prefix so a
/// name such as `-x.mp4` or `a:b.mp4` is not read as an option or protocol.
/// Paths must be UTF-8 (ours are); others are converted lossily.
pub fn path_arg(path: &Path) -> String {
    let s = path.to_string_lossy();
    if path.is_absolute() {
        s.into_owned()
    } else {
        format!("file:{s}")
    }
}

/// `-i <path>`, preceded for user media by the whitelists (input options
/// must come before the `-i` they apply to).
pub fn input_args(path: &Path, untrusted: bool) -> Vec<String> {
    let mut args = Vec::with_capacity(6);
    if untrusted {
        args.extend(whitelist_args(UNTRUSTED_DEMUXERS));
    }
    args.push("-i".to_owned());
    args.push(path_arg(path));
    args
}

/// `-i <path>` for a file reelay wrote itself, which may be an HLS media
/// playlist (read with its MPEG-TS segments). Never for user media: the HLS
/// demuxer opens the files a playlist names.
pub fn own_input_args(path: &Path) -> Vec<String> {
    let mut args = whitelist_args(OWN_DEMUXERS).to_vec();
    args.push("-i".to_owned());
    args.push(path_arg(path));
    args
}

fn whitelist_args(demuxers: &str) -> [String; 4] {
    [
        "-protocol_whitelist".to_owned(),
        PROTOCOLS.to_owned(),
        "-format_whitelist".to_owned(),
        demuxers.to_owned(),
    ]
}

/// Puts the whitelists before every `-i` that lacks them.
fn guard_inputs(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 8);
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-i" {
            // options directly before this -i (after the previous -i)
            let has = |out: &[String], opt: &str| {
                out.iter()
                    .rev()
                    .take_while(|a| *a != "-i")
                    .any(|a| a == opt)
            };
            if !has(&out, "-protocol_whitelist") {
                out.extend(["-protocol_whitelist".to_owned(), PROTOCOLS.to_owned()]);
            }
            if !has(&out, "-format_whitelist") {
                out.extend([
                    "-format_whitelist".to_owned(),
                    UNTRUSTED_DEMUXERS.to_owned(),
                ]);
            }
            out.push(args[i].clone());
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
        } else {
            out.push(args[i].clone());
            i += 1;
        }
    }
    out
}

/// Runs ffmpeg and ffprobe. Cheap to clone; clones share the concurrency limit.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    config: MediaConfig,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    /// `ffmpeg -filters`, read once.
    filters: tokio::sync::OnceCell<std::collections::HashSet<String>>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.inner.config)
            .field("free_slots", &self.inner.slots.available_permits())
            .finish()
    }
}

impl Runner {
    pub fn new(config: &MediaConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.effective_max_concurrent())),
                config: config.clone(),
                next_id: AtomicU64::new(1),
                filters: tokio::sync::OnceCell::new(),
            }),
        }
    }

    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// First line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.9-0+deb12u1 ...".
    pub async fn version(&self) -> Result<String, ProcessError> {
        let bin = &self.inner.config.ffmpeg_path;
        let out = self
            .run_plain(
                bin,
                &["-hide_banner".into(), "-version".into()],
                "ffmpeg -version",
            )
            .await?;
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| ProcessError::BadOutput("ffmpeg -version printed nothing".into()))
    }

    /// Whether the installed ffmpeg has the filter `name` (e.g. "libvmaf",
    /// which depends on how ffmpeg was built). `ffmpeg -filters` is read once
    /// per runner (clones share it); a failed read is tried again next time.
    pub async fn has_filter(&self, name: &str) -> Result<bool, ProcessError> {
        let bin = &self.inner.config.ffmpeg_path;
        let filters = self
            .inner
            .filters
            .get_or_try_init(|| async {
                let out = self
                    .run_plain(
                        bin,
                        &["-hide_banner".into(), "-filters".into()],
                        "ffmpeg -filters",
                    )
                    .await?;
                Ok::<_, ProcessError>(parse_filter_names(&String::from_utf8_lossy(&out)))
            })
            .await?;
        Ok(filters.contains(name))
    }

    /// ffprobe's view of a media file. The file is treated as user media
    /// (whitelisted protocols and demuxers). Not counted against
    /// `max_concurrent`: probes are short and must not queue behind transcodes.
    pub async fn ffprobe(&self, path: &Path) -> Result<Probe, ProcessError> {
        self.ffprobe_with(path, PROBE_DEMUXERS).await
    }

    /// ffprobe of a file reelay wrote itself, which may also be an HLS
    /// playlist (read with its MPEG-TS segments). Never for user media: the
    /// HLS demuxer opens the files a playlist names.
    pub async fn ffprobe_own(&self, path: &Path) -> Result<Probe, ProcessError> {
        self.ffprobe_with(path, OWN_DEMUXERS).await
    }

    async fn ffprobe_with(&self, path: &Path, demuxers: &str) -> Result<Probe, ProcessError> {
        let bin = &self.inner.config.ffprobe_path;
        let mut args: Vec<String> = vec!["-v".into(), "error".into()];
        args.extend(whitelist_args(demuxers));
        args.extend(
            [
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                "-i",
            ]
            .map(String::from),
        );
        args.push(path_arg(path));
        let out = self.run_plain(bin, &args, "ffprobe").await?;
        probe::parse(&out).map_err(|e| ProcessError::BadOutput(format!("ffprobe JSON: {e}")))
    }

    /// Runs a short-lived binary with tokio (kill on drop, probe deadline);
    /// returns stdout.
    async fn run_plain(
        &self,
        bin: &Path,
        args: &[String],
        label: &str,
    ) -> Result<Vec<u8>, ProcessError> {
        let deadline = self.inner.config.probe_timeout();
        let started = Instant::now();
        let child = tokio::process::Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(bin, e))?;
        let out = match tokio::time::timeout(deadline, child.wait_with_output()).await {
            Ok(out) => out?,
            // Dropping the child (inside the timed-out future) kills it.
            Err(_) => {
                return Err(ProcessError::Timeout {
                    label: label.to_owned(),
                    after: deadline,
                    stderr_tail: Vec::new(),
                })
            }
        };
        tracing::debug!(label, elapsed_ms = started.elapsed().as_millis() as u64, status = %out.status, "child finished");
        if !out.status.success() {
            let mut tail = Tail::new(TAIL_LINES, TAIL_BYTES);
            for line in String::from_utf8_lossy(&out.stderr).lines() {
                tail.push(line);
            }
            return Err(ProcessError::Failed {
                label: label.to_owned(),
                code: out.status.code(),
                stderr_tail: tail.into_vec(),
            });
        }
        Ok(out.stdout)
    }

    /// The whole command line [`Runner::ffmpeg`] runs for `args`: binary,
    /// ffmpeg-sidecar's `-loglevel level+info`, `-hide_banner -nostdin -y`,
    /// and (for user media) the whitelists before each input.
    pub fn ffmpeg_argv(&self, args: &[String], untrusted: bool) -> Vec<String> {
        let mut argv = vec![
            self.inner.config.ffmpeg_path.to_string_lossy().into_owned(),
            "-loglevel".to_owned(),
            "level+info".to_owned(),
            "-hide_banner".to_owned(),
            "-nostdin".to_owned(),
            "-y".to_owned(),
        ];
        if untrusted {
            argv.extend(guard_inputs(args.to_vec()));
        } else {
            argv.extend(args.iter().cloned());
        }
        argv
    }

    /// Runs `ffmpeg -hide_banner -nostdin -y <args>` (ffmpeg-sidecar also
    /// prepends `-loglevel level+info`, which its progress parsing needs:
    /// don't pass `-loglevel` or `-nostats`). Success is judged by the exit
    /// status. Output to stdout is discarded: write to files.
    pub async fn ffmpeg(
        &self,
        args: Vec<String>,
        opts: RunOptions,
    ) -> Result<RunOutput, ProcessError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("ffmpeg", run = id, label = %opts.label);
        self.ffmpeg_inner(args, opts).instrument(span).await
    }

    async fn ffmpeg_inner(
        &self,
        args: Vec<String>,
        opts: RunOptions,
    ) -> Result<RunOutput, ProcessError> {
        let permit = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let args = if opts.untrusted_input {
            guard_inputs(args)
        } else {
            args
        };
        let bin = self.inner.config.ffmpeg_path.clone();
        tracing::debug!(?args, "starting ffmpeg");
        let started = Instant::now();

        let mut cmd = FfmpegCommand::new_with_path(&bin);
        cmd.args(["-hide_banner", "-nostdin", "-y"]).args(&args);
        die_with_parent(cmd.as_inner_mut());
        let mut child = cmd.spawn().map_err(|e| spawn_error(&bin, e))?;
        let iter = match child.iter() {
            Ok(iter) => iter,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProcessError::BadOutput(format!("ffmpeg stderr: {e}")));
            }
        };
        let pid = child.as_inner().id();
        let child = Arc::new(Mutex::new(child));
        let mut guard = KillOnDrop {
            child: Some(child.clone()),
        };

        let reported = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            on_progress: opts.on_progress.clone(),
            duration: opts.input_duration_secs.filter(|d| *d > 0.0),
            reported: reported.clone(),
        };
        // ffmpeg prints no progress until every output has written its
        // header; an output fed late (a sprite sheet is one frame at the
        // end) holds every report back. Until the first one, progress is
        // read from how far ffmpeg has read its first input.
        let fallback = match (&opts.on_progress, first_input(&args)) {
            (Some(cb), Some(input)) => Some(tokio::spawn(input_position_progress(
                pid,
                input,
                cb.clone(),
                opts.input_duration_secs.filter(|d| *d > 0.0),
                reported,
            ))),
            _ => None,
        };
        let span = tracing::Span::current();
        let mut handle = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            // The slot is held until the child is reaped, not just until the
            // caller stops waiting.
            let _permit = permit;
            let logs = reader.read(iter);
            let status = reap(&child);
            (status, logs)
        });

        let (joined, timed_out) = match tokio::time::timeout(opts.deadline, &mut handle).await {
            Ok(joined) => (joined, false),
            Err(_) => {
                tracing::debug!(deadline = ?opts.deadline, "deadline passed, killing ffmpeg");
                guard.kill();
                (handle.await, true)
            }
        };
        guard.disarm();
        if let Some(task) = fallback {
            task.abort();
        }
        let elapsed = started.elapsed();
        let (status, logs) = joined.map_err(|e| {
            ProcessError::Io(std::io::Error::other(format!("ffmpeg reader task: {e}")))
        })?;
        let status = status?;
        tracing::debug!(elapsed_ms = elapsed.as_millis() as u64, %status, timed_out, "ffmpeg finished");

        if timed_out {
            return Err(ProcessError::Timeout {
                label: opts.label,
                after: opts.deadline,
                stderr_tail: logs.tail.into_vec(),
            });
        }
        if !status.success() {
            return Err(ProcessError::Failed {
                label: opts.label,
                code: status.code(),
                stderr_tail: logs.tail.into_vec(),
            });
        }
        Ok(RunOutput {
            stderr_tail: logs.tail.into_vec(),
            log: logs.log.into_vec(),
            elapsed,
        })
    }
}

fn spawn_error(bin: &Path, e: std::io::Error) -> ProcessError {
    let binary = bin.display().to_string();
    if e.kind() == std::io::ErrorKind::NotFound {
        ProcessError::NotFound { binary }
    } else {
        ProcessError::Spawn { binary, source: e }
    }
}

/// Kills the child when the run is abandoned (deadline or dropped future).
/// Reaping stays with the reader thread.
struct KillOnDrop {
    child: Option<Arc<Mutex<FfmpegChild>>>,
}

impl KillOnDrop {
    fn kill(&mut self) {
        if let Some(child) = &self.child {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            // Fails only when the child is already gone.
            let _ = child.kill();
        }
    }

    fn disarm(&mut self) {
        self.child = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.child.is_some() {
            tracing::debug!("ffmpeg run abandoned, killing the child");
            self.kill();
        }
    }
}

/// Waits for the child without holding the lock, so a kill can get in.
fn reap(child: &Mutex<FfmpegChild>) -> std::io::Result<ExitStatus> {
    loop {
        {
            let mut c = child.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(status) = c.as_inner_mut().try_wait()? {
                return Ok(status);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Logs {
    tail: Tail,
    log: Tail,
}

struct Reader {
    on_progress: Option<ProgressFn>,
    duration: Option<f64>,
    /// Set once ffmpeg has printed a progress report of its own.
    reported: Arc<AtomicBool>,
}

/// The path of the first `-i` input when it is a local file.
fn first_input(args: &[String]) -> Option<PathBuf> {
    let i = args.iter().position(|a| a == "-i")?;
    let raw = args.get(i + 1)?;
    let path = raw.strip_prefix("file:").unwrap_or(raw);
    if path.is_empty() || path.contains("://") || path == "-" || path.starts_with("pipe:") {
        return None;
    }
    std::fs::canonicalize(path).ok()
}

/// How far (bytes) process `pid` has read the open file `path`, from
/// /proc/PID/fdinfo (Linux). None when it is not open or /proc is not there.
fn read_position(pid: u32, path: &Path) -> Option<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() == Some(path) {
            let info = std::fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .ok()?;
            return info
                .lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

/// Reports progress as the share of the input read so far (at most 99 %),
/// every half second, until ffmpeg reports its own. A reading is reported
/// only once the next one is not below it: a demuxer's jump to an index at
/// the end of the file (an MP4 without faststart) is never shown.
async fn input_position_progress(
    pid: u32,
    input: PathBuf,
    cb: ProgressFn,
    duration: Option<f64>,
    reported: Arc<AtomicBool>,
) {
    let Ok(size) = std::fs::metadata(&input).map(|m| m.len()) else {
        return;
    };
    if size == 0 {
        return;
    }
    let started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    let mut previous: Option<u64> = None;
    loop {
        interval.tick().await;
        if reported.load(Ordering::Relaxed) {
            return;
        }
        let (pid2, input2) = (pid, input.clone());
        let pos = tokio::task::spawn_blocking(move || read_position(pid2, &input2))
            .await
            .ok()
            .flatten();
        let Some(pos) = pos else { continue };
        let confirmed = previous.filter(|p| pos >= *p);
        previous = Some(pos);
        let Some(pos) = confirmed else { continue };
        let share = (pos as f64 / size as f64).clamp(0.0, 0.99);
        let time_secs = duration.map_or(0.0, |d| d * share);
        let wall = started.elapsed().as_secs_f64();
        let progress = Progress {
            percent: Some(share * 100.0),
            fps: 0.0,
            speed: if wall > 0.0 {
                (time_secs / wall) as f32
            } else {
                0.0
            },
            time_secs,
        };
        if reported.load(Ordering::Relaxed) {
            return;
        }
        let cb = cb.clone();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(progress))).is_err() {
            tracing::warn!("progress callback panicked");
            return;
        }
    }
}

impl Reader {
    /// Reads every event until stderr closes (never stop early: an unread
    /// pipe stalls ffmpeg).
    fn read(self, iter: ffmpeg_sidecar::iter::FfmpegIterator) -> Logs {
        let mut logs = Logs {
            tail: Tail::new(TAIL_LINES, TAIL_BYTES),
            log: Tail::new(LOG_LINES, LOG_BYTES),
        };
        let mut duration = self.duration;
        let mut line = |l: &str| {
            logs.tail.push(l);
            logs.log.push(l);
        };
        for event in iter {
            match event {
                FfmpegEvent::Progress(p) => {
                    let Some(time) = FfmpegTimeDuration::from_str(&p.time) else {
                        continue;
                    };
                    let time_secs = time.as_seconds().max(0.0);
                    self.reported.store(true, Ordering::Relaxed);
                    let progress = Progress {
                        percent: duration.map(|d| (time_secs / d * 100.0).clamp(0.0, 100.0)),
                        fps: p.fps,
                        speed: p.speed,
                        time_secs,
                    };
                    if let Some(cb) = &self.on_progress {
                        // A panicking callback must not leave the child unreaped.
                        let cb = cb.clone();
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(progress)))
                            .is_err()
                        {
                            tracing::warn!("progress callback panicked");
                        }
                    }
                }
                FfmpegEvent::ParsedDuration(d) => {
                    if d.input_index == 0 && duration.is_none() && d.duration > 0.0 {
                        duration = Some(d.duration);
                    }
                    line(&d.raw_log_message);
                }
                FfmpegEvent::Log(_, l) => line(&l),
                FfmpegEvent::ParsedVersion(x) => line(&x.raw_log_message),
                FfmpegEvent::ParsedConfiguration(x) => line(&x.raw_log_message),
                FfmpegEvent::ParsedStreamMapping(x) => line(&x),
                FfmpegEvent::ParsedInput(x) => line(&x.raw_log_message),
                FfmpegEvent::ParsedOutput(x) => line(&x.raw_log_message),
                FfmpegEvent::ParsedInputStream(x) | FfmpegEvent::ParsedOutputStream(x) => {
                    line(&x.raw_log_message)
                }
                // Sidecar's own messages, e.g. the spurious "No streams found"
                // for file outputs: not ffmpeg's words, not a failure.
                FfmpegEvent::Error(e) => tracing::trace!(sidecar = %e, "ffmpeg-sidecar event"),
                FfmpegEvent::OutputFrame(_)
                | FfmpegEvent::OutputChunk(_)
                | FfmpegEvent::Done
                | FfmpegEvent::LogEOF => {}
            }
        }
        logs
    }
}

/// Keeps the newest lines within a line and byte budget.
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl Tail {
    fn new(max_lines: usize, max_bytes: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            max_lines,
            max_bytes,
        }
    }

    fn push(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        let line = truncate(line, LINE_MAX);
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    fn into_vec(self) -> Vec<String> {
        self.lines.into()
    }
}

fn truncate(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
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

/// Kill-on-drop covers a caller that goes away; this covers a reelay process
/// that is killed outright (SIGKILL, OOM): the kernel then sends ffmpeg
/// SIGKILL too, so no orphan keeps burning CPU on a job that will be redone.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut std::process::Command) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::testutil;
    use std::sync::atomic::AtomicUsize;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tail_keeps_the_newest_lines_within_both_budgets() {
        let mut t = Tail::new(3, 1000);
        for i in 0..10 {
            t.push(&format!("line {i}"));
        }
        assert_eq!(t.into_vec(), s(&["line 7", "line 8", "line 9"]));

        let mut t = Tail::new(100, 25);
        for i in 0..10 {
            t.push(&format!("line {i:04}"));
        }
        assert_eq!(t.into_vec(), s(&["line 0008", "line 0009"]));
    }

    #[test]
    fn whitelists_are_put_before_every_input_once() {
        let args = s(&["-ss", "1", "-i", "/a.mp4", "-i", "/b.mp4", "-map", "0"]);
        let guarded = guard_inputs(args);
        let wl = whitelist_args(UNTRUSTED_DEMUXERS);
        let mut expected = s(&["-ss", "1"]);
        expected.extend(wl.clone());
        expected.extend(s(&["-i", "/a.mp4"]));
        expected.extend(wl.clone());
        expected.extend(s(&["-i", "/b.mp4", "-map", "0"]));
        assert_eq!(guarded, expected);
        assert_eq!(guard_inputs(guarded.clone()), guarded, "idempotent");
        assert_eq!(
            guard_inputs(input_args(Path::new("/m.mp4"), true)),
            input_args(Path::new("/m.mp4"), true)
        );
    }

    #[test]
    fn filter_names_are_read_from_the_listing_and_the_legend_is_not_one() {
        // ffmpeg 5.1's layout; one build without libvmaf, one with.
        let without = "Filters:\n  T.. = Timeline support\n  .S. = Slice threading\n  \
            ..C = Command support\n  A = Audio input/output\n  | = Source or sink filter\n \
            ... loudnorm          A->A       EBU R128 loudness normalization\n \
            TS. ssim              VV->V      Calculate the SSIM between two video streams.\n \
            ... vmafmotion        V->V       Calculate the VMAF Motion score.\n \
            ... aevalsrc          |->A       Generate an audio signal.\n";
        let names = parse_filter_names(without);
        assert!(names.contains("loudnorm") && names.contains("ssim") && names.contains("aevalsrc"));
        assert!(!names.contains("libvmaf"), "vmafmotion is not libvmaf");
        assert!(!names.contains("=") && !names.contains("T.."));
        assert_eq!(names.len(), 4);
        let with = format!("{without} TS. libvmaf           VV->V      Calculate the VMAF between two video streams.\n");
        assert!(parse_filter_names(&with).contains("libvmaf"));
        assert!(parse_filter_names("garbage\n\n").is_empty());
    }

    #[tokio::test]
    async fn the_installed_ffmpeg_lists_its_filters_once() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        assert!(runner.has_filter("loudnorm").await.unwrap());
        assert!(runner.has_filter("ssim").await.unwrap());
        assert!(!runner.has_filter("no-such-filter").await.unwrap());
        assert!(runner.inner.filters.initialized());
        // Whether libvmaf is there depends on the build; asking twice agrees.
        let vmaf = runner.has_filter("libvmaf").await.unwrap();
        assert_eq!(runner.clone().has_filter("libvmaf").await.unwrap(), vmaf);
    }

    #[test]
    fn relative_paths_cannot_be_read_as_options_or_protocols() {
        assert_eq!(path_arg(Path::new("/tmp/a:b.mp4")), "/tmp/a:b.mp4");
        assert_eq!(path_arg(Path::new("-y.mp4")), "file:-y.mp4");
        assert_eq!(path_arg(Path::new("http:x.mp4")), "file:http:x.mp4");
    }

    #[test]
    fn error_display_shows_the_last_stderr_lines() {
        let e = ProcessError::Failed {
            label: "transcode".into(),
            code: Some(1),
            stderr_tail: s(&["a", "b", "[error] c: Invalid data", "d"]),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("transcode failed (exit code 1): "),
            "{text}"
        );
        assert!(text.ends_with("b | [error] c: Invalid data | d"), "{text}");
        assert_eq!(e.reason(), "c: Invalid data");
        let paths = ProcessError::Failed {
            label: "transcode".into(),
            code: Some(1),
            stderr_tail: s(&[
                "[mov @ 0x1] [error] moov atom not found",
                "[error] /tmp/r-1/in.mp4: Invalid data",
            ]),
        };
        assert_eq!(paths.reason(), "moov atom not found; in.mp4: Invalid data");
        let timeout = ProcessError::Timeout {
            label: "ffprobe".into(),
            after: Duration::from_secs(3),
            stderr_tail: vec![],
        };
        assert_eq!(
            timeout.reason(),
            "ffprobe took longer than 3s and was stopped"
        );
        assert!(e.is_input_fault());
        assert!(!ProcessError::NotFound {
            binary: "ffmpeg".into()
        }
        .is_input_fault());
    }

    #[tokio::test]
    async fn a_missing_binary_is_reported_as_not_found() {
        let cfg = MediaConfig {
            ffmpeg_path: "/nonexistent/ffmpeg".into(),
            ffprobe_path: "/nonexistent/ffprobe".into(),
            ..MediaConfig::default()
        };
        let runner = Runner::new(&cfg);

        let version = runner.version().await.unwrap_err();
        let run = runner
            .ffmpeg(
                s(&["-version"]),
                RunOptions::new("x", Duration::from_secs(5)),
            )
            .await
            .unwrap_err();
        let probe = runner.ffprobe(Path::new("/x.mp4")).await.unwrap_err();

        for e in [version, run, probe] {
            assert!(matches!(e, ProcessError::NotFound { .. }), "{e:?}");
            assert!(e.to_string().contains("install ffmpeg"), "{e}");
            assert!(!e.is_input_fault());
        }
    }

    #[tokio::test]
    async fn version_reports_the_first_line() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let v = runner.version().await.unwrap();
        assert!(v.starts_with("ffmpeg version "), "{v}");
    }

    /// Live processes whose command line contains `marker`.
    fn processes_with(marker: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmd).contains(marker) {
                    found.push(name);
                }
            }
        }
        found
    }

    fn endless_args(marker: &str) -> Vec<String> {
        // A lavfi source whose duration (1 hour) names the run.
        s(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=320x240:rate=25:duration={marker}"),
            "-f",
            "null",
            "-",
        ])
    }

    #[tokio::test]
    async fn a_run_past_its_deadline_is_killed_and_reaped() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let marker = "3600.123";
        let started = Instant::now();

        let err = runner
            .ffmpeg(
                endless_args(marker),
                RunOptions::new("endless", Duration::from_secs(1)),
            )
            .await
            .unwrap_err();

        assert!(matches!(err, ProcessError::Timeout { .. }), "{err:?}");
        assert!(err.is_input_fault());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!err.stderr_tail().is_empty(), "the tail explains what ran");
        assert!(processes_with(marker).is_empty(), "ffmpeg still running");
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_child() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let marker = "3600.456";
        let run = runner.ffmpeg(
            endless_args(marker),
            RunOptions::new("abandoned", Duration::from_secs(60)),
        );

        let outcome = tokio::time::timeout(Duration::from_millis(700), run).await;

        assert!(outcome.is_err(), "the run should still have been going");
        let gone_by = Instant::now() + Duration::from_secs(5);
        while !processes_with(marker).is_empty() {
            assert!(
                Instant::now() < gone_by,
                "ffmpeg survived its dropped future"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The slot comes back once the child is reaped.
        let all = runner.config().effective_max_concurrent();
        while runner.inner.slots.available_permits() < all {
            assert!(Instant::now() < gone_by, "the slot was not given back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn an_undecodable_input_fails_with_ffmpegs_reason() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("master.mp4");
        std::fs::write(&bad, b"this is not a video").unwrap();
        let mut args = input_args(&bad, true);
        args.extend(s(&["-f", "null", "-"]));

        let err = runner
            .ffmpeg(args, RunOptions::new("decode", Duration::from_secs(20)))
            .await
            .unwrap_err();

        let ProcessError::Failed {
            code, stderr_tail, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*code, Some(1));
        assert!(
            stderr_tail.iter().any(|l| l.contains("Invalid data found")),
            "{stderr_tail:?}"
        );
        assert!(err.to_string().contains("Invalid data found"), "{err}");
        assert!(err.is_input_fault());
        let probe_err = runner.ffprobe(&bad).await.unwrap_err();
        assert!(
            probe_err.to_string().contains("Invalid data found"),
            "{probe_err}"
        );
    }

    #[test]
    fn the_first_input_is_found_only_for_local_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.mp4");
        std::fs::write(&f, b"x").unwrap();
        let canon = std::fs::canonicalize(&f).unwrap();
        let with = |i: &str| s(&["-y", "-i", i, "-f", "null", "-"]);
        assert_eq!(first_input(&with(f.to_str().unwrap())), Some(canon.clone()));
        assert_eq!(
            first_input(&with(&format!("file:{}", f.display()))),
            Some(canon)
        );
        assert_eq!(first_input(&with("testsrc2=size=16x16")), None);
        assert_eq!(first_input(&with("https://example.com/m.mp4")), None);
        assert_eq!(first_input(&with("pipe:0")), None);
        assert_eq!(first_input(&s(&["-f", "null", "-"])), None);
    }

    /// ffmpeg holds its own reports back until every output has written its
    /// header; a sprite-like output (one tiled frame at the end) holds them
    /// to the end. The share of the input read fills the gap.
    #[tokio::test]
    async fn progress_comes_from_the_input_position_while_ffmpeg_reports_nothing() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("m.mp4");
        runner
            .ffmpeg(
                s(&[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=320x240:rate=25:duration=4",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-movflags",
                    "+faststart",
                    master.to_str().unwrap(),
                ]),
                RunOptions::new("make master", Duration::from_secs(30)),
            )
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
        let seen2 = seen.clone();
        let cb: ProgressFn = Arc::new(move |p| seen2.lock().unwrap().push(p));
        let sheet = dir.path().join("sheet.jpg");
        // -re: 4 s of reading; the one output frame comes at the end.
        let args = s(&[
            "-re",
            "-i",
            master.to_str().unwrap(),
            "-vf",
            "fps=5,scale=32:-2,tile=20x1",
            "-frames:v",
            "1",
            "-update",
            "1",
            sheet.to_str().unwrap(),
        ]);
        runner
            .ffmpeg(
                args,
                RunOptions::new("sheet", Duration::from_secs(30))
                    .input_duration(4.0)
                    .progress(Some(cb)),
            )
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let from_input: Vec<f64> = seen
            .iter()
            .filter(|p| p.fps == 0.0)
            .filter_map(|p| p.percent)
            .collect();
        assert!(
            from_input
                .iter()
                .filter(|p| **p > 0.0 && **p < 100.0)
                .count()
                >= 2,
            "{seen:?}"
        );
        assert!(
            from_input.windows(2).all(|w| w[0] <= w[1]),
            "{from_input:?}"
        );
        assert!(from_input.iter().all(|p| *p <= 99.0), "{from_input:?}");
    }

    #[tokio::test]
    async fn progress_reports_increasing_percent_up_to_the_end() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (seen2, calls2) = (seen.clone(), calls.clone());
        let cb: ProgressFn = Arc::new(move |p| {
            calls2.fetch_add(1, Ordering::Relaxed);
            seen2.lock().unwrap().push(p);
        });
        // Real-time reading (-re) of 3 s of input: several reports, every 0.2 s.
        let args = s(&[
            "-stats_period",
            "0.2",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=3",
            "-f",
            "null",
            "-",
        ]);

        runner
            .ffmpeg(
                args,
                RunOptions::new("progress", Duration::from_secs(20))
                    .input_duration(3.0)
                    .progress(Some(cb)),
            )
            .await
            .unwrap();

        let seen = seen.lock().unwrap();
        let percents: Vec<f64> = seen.iter().filter_map(|p| p.percent).collect();
        assert!(percents.len() >= 5, "{seen:?}");
        assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
        assert!(
            percents.iter().any(|p| *p > 0.0 && *p < 100.0),
            "{percents:?}"
        );
        assert!(*percents.last().unwrap() > 95.0, "{percents:?}");
        assert!(percents.iter().all(|p| (0.0..=100.0).contains(p)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_dies_when_the_thread_that_started_it_is_gone() {
        let pid = std::thread::spawn(|| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("30");
            die_with_parent(&mut cmd);
            cmd.spawn().unwrap().id()
        })
        .join()
        .unwrap();
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            // A killed child is a zombie (state Z) until reaped, or gone.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.split_whitespace().nth(2) == Some("Z"))
                .unwrap_or(true)
        });
        assert!(gone, "the child outlived its parent");
    }
}
