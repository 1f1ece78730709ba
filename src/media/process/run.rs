//! Spawning, limiting, timing out and reaping the ffmpeg and ffprobe children.

use super::args::{guard_inputs, whitelist_args};
use super::output::{first_input, input_position_progress, stalled, Pulse, Reader, Tail};
use super::*;
use crate::media::probe::{self, Probe};
use crate::media::MediaConfig;
use ffmpeg_sidecar::child::FfmpegChild;
use ffmpeg_sidecar::command::FfmpegCommand;
use std::fmt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Runs ffmpeg and ffprobe. Cheap to clone; clones share the concurrency limit.
#[derive(Clone)]
pub struct Runner {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: MediaConfig,
    pub(super) slots: Arc<Semaphore>,
    pub(super) next_id: AtomicU64,
    /// `ffmpeg -filters`, read once.
    pub(super) filters: tokio::sync::OnceCell<std::collections::HashSet<String>>,
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
        let bin = self.inner.config.ffmpeg_path.clone();
        self.first_version_line(&bin, "ffmpeg").await
    }

    /// First line of `ffprobe -version`: startup refuses to run without it.
    pub async fn ffprobe_version(&self) -> Result<String, ProcessError> {
        let bin = self.inner.config.ffprobe_path.clone();
        self.first_version_line(&bin, "ffprobe").await
    }

    async fn first_version_line(&self, bin: &Path, name: &str) -> Result<String, ProcessError> {
        let what = format!("{name} -version");
        let out = self
            .run_plain(bin, &["-hide_banner".into(), "-version".into()], &what)
            .await?;
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| ProcessError::BadOutput(format!("{what} printed nothing")))
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

    /// Whether this ffmpeg can decode its own encoders' output in the same
    /// process (loopback decoders, `-dec`, new in ffmpeg 7.0), which would
    /// let the transcode measure every rendition itself. Read from the
    /// `-version` line; a version it cannot read (a git build) counts as
    /// without, so QC keeps its separate quality pass.
    pub async fn has_loopback_decoders(&self) -> Result<bool, ProcessError> {
        Ok(ffmpeg_major_version(&self.version().await?).is_some_and(|m| m >= 7))
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

    pub(super) async fn ffprobe_with(
        &self,
        path: &Path,
        demuxers: &str,
    ) -> Result<Probe, ProcessError> {
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
    pub(super) async fn run_plain(
        &self,
        bin: &Path,
        args: &[String],
        label: &str,
    ) -> Result<Vec<u8>, ProcessError> {
        let started = Instant::now();
        let out = self.run_plain_inner(bin, args, label).await;
        record_run(label, &out, started.elapsed());
        out
    }

    async fn run_plain_inner(
        &self,
        bin: &Path,
        args: &[String],
        label: &str,
    ) -> Result<Vec<u8>, ProcessError> {
        let deadline = self.inner.config.probe_timeout();
        let limits = if bin == self.inner.config.ffprobe_path {
            self.inner.config.ffprobe_limits()
        } else {
            self.inner.config.ffmpeg_limits()
        };
        let started = Instant::now();
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        limits.apply(&mut cmd);
        die_with_parent(&mut cmd);
        let child = tokio::process::Command::from(cmd)
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
        let mut tail = Tail::new(TAIL_LINES, TAIL_BYTES);
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            tail.push(line);
        }
        let tail = tail.into_vec();
        if !out.status.success() {
            return Err(limits.classify(label, &out.status, tail));
        }
        if let Some(e) = limits.exceeded(label, &out.status, &tail) {
            return Err(e);
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
        let kind = opts.label.clone();
        let started = Instant::now();
        let out = self.ffmpeg_inner(args, opts).instrument(span).await;
        record_run(&kind, &out, started.elapsed());
        out
    }

    pub(super) async fn ffmpeg_inner(
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
        let limits = self.inner.config.ffmpeg_limits();
        limits.apply(cmd.as_inner_mut());
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
        let pulse = Arc::new(Pulse::new());
        let reader = Reader {
            on_progress: opts.on_progress.clone(),
            duration: opts.input_duration_secs.filter(|d| *d > 0.0),
            reported: reported.clone(),
            pulse: pulse.clone(),
        };
        let stall_after = self.inner.config.stall_after();
        let watchdog = stalled(pid, first_input(&args), pulse, stall_after);
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

        let mut ended = Ended::Exited;
        let joined = tokio::select! {
            joined = &mut handle => joined,
            _ = tokio::time::sleep(opts.deadline) => {
                tracing::debug!(deadline = ?opts.deadline, "deadline passed, killing ffmpeg");
                ended = Ended::Deadline;
                guard.kill();
                handle.await
            }
            _ = watchdog => {
                tracing::warn!(after = ?stall_after, "ffmpeg made no progress; stopping it");
                ended = Ended::Stalled;
                // SIGTERM first: ffmpeg ends cleanly when it still can.
                guard.terminate();
                match tokio::time::timeout(TERM_GRACE, &mut handle).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        guard.kill();
                        handle.await
                    }
                }
            }
        };
        let timed_out = ended == Ended::Deadline;
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

        let tail = logs.tail.into_vec();
        if ended == Ended::Stalled {
            return Err(ProcessError::Stalled {
                label: opts.label,
                after: stall_after.unwrap_or_default(),
                stderr_tail: tail,
            });
        }
        if timed_out {
            return Err(ProcessError::Timeout {
                label: opts.label,
                after: opts.deadline,
                stderr_tail: tail,
            });
        }
        if !status.success() {
            return Err(limits.classify(&opts.label, &status, tail));
        }
        let log = logs.log.into_vec();
        if let Some(e) = limits.exceeded(&opts.label, &status, &log) {
            return Err(e);
        }
        Ok(RunOutput {
            stderr_tail: tail,
            log,
            elapsed,
        })
    }
}

/// Counts one run of ffmpeg or ffprobe by its kind (the run's label) and
/// outcome, with its wall time.
fn record_run<T>(label: &str, out: &Result<T, ProcessError>, elapsed: std::time::Duration) {
    use crate::telemetry::metrics;
    let outcome = match out {
        Ok(_) => "ok",
        Err(ProcessError::Timeout { .. }) => "timeout",
        Err(ProcessError::Stalled { .. }) => "stalled",
        Err(ProcessError::LimitExceeded { .. }) => "limit_exceeded",
        Err(ProcessError::Failed { .. }) => "failed",
        Err(_) => "error",
    };
    let kind = metrics::kind_label(label);
    let labels = [("kind", kind.as_str()), ("outcome", outcome)];
    metrics::inc("reelay_ffmpeg_runs_total", &labels);
    metrics::observe("reelay_ffmpeg_duration_seconds", &labels, elapsed);
}

pub(super) fn spawn_error(bin: &Path, e: std::io::Error) -> ProcessError {
    let binary = bin.display().to_string();
    if e.kind() == std::io::ErrorKind::NotFound {
        ProcessError::NotFound { binary }
    } else {
        ProcessError::Spawn { binary, source: e }
    }
}

/// How a run ended: on its own, at its deadline, or stopped by the watchdog.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    Exited,
    Deadline,
    Stalled,
}

/// How long a stalled ffmpeg gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// Kills the child when the run is abandoned (deadline or dropped future).
/// Reaping stays with the reader thread.
pub(super) struct KillOnDrop {
    pub(super) child: Option<Arc<Mutex<FfmpegChild>>>,
}

impl KillOnDrop {
    pub(super) fn kill(&mut self) {
        if let Some(child) = &self.child {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            // Fails only when the child is already gone.
            let _ = child.kill();
        }
    }

    /// SIGTERM, if the child has not exited yet (checked under the lock, so
    /// the signal never reaches a reused pid).
    pub(super) fn terminate(&mut self) {
        if let Some(child) = &self.child {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(None) = child.as_inner_mut().try_wait() {
                let pid = child.as_inner().id() as libc::pid_t;
                // SAFETY: kill(2) with a pid of our own live, unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }

    pub(super) fn disarm(&mut self) {
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

/// Waits for the child without holding the lock, so a kill can get in: the
/// wait for its exit is an event (`waitid` with `WNOWAIT`, which leaves the
/// child to be reaped under the lock), not a polling timer.
pub(super) fn reap(child: &Mutex<FfmpegChild>) -> std::io::Result<ExitStatus> {
    let pid = child
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_inner()
        .id();
    loop {
        let waited = wait_exited(pid);
        {
            let mut c = child.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(status) = c.as_inner_mut().try_wait()? {
                return Ok(status);
            }
        }
        if !waited {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Blocks until the child `pid` has exited, without reaping it. False when
/// the wait could not be made (already reaped, or not Linux).
#[cfg(target_os = "linux")]
fn wait_exited(pid: u32) -> bool {
    loop {
        // SAFETY: waitid only writes the siginfo_t it is given.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return true;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn wait_exited(_pid: u32) -> bool {
    false
}

/// Kill-on-drop covers a caller that goes away; this covers a reelay process
/// that is killed outright (SIGKILL, OOM): the kernel then sends ffmpeg
/// SIGKILL too, so no orphan keeps burning CPU on a job that will be redone.
#[cfg(target_os = "linux")]
pub(super) fn die_with_parent(cmd: &mut std::process::Command) {
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
pub(super) fn die_with_parent(_cmd: &mut std::process::Command) {}

/// The major version in an `ffmpeg -version` line: 5 for "ffmpeg version
/// 5.1.9-0+deb12u1", 7 for "ffmpeg version n7.0.2"; None for a git build
/// ("ffmpeg version N-113000-g...").
pub fn ffmpeg_major_version(line: &str) -> Option<u32> {
    let v = line
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    let v = v.strip_prefix('n').unwrap_or(v);
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}
