//! Reading a child's output: progress reports (ffmpeg's own, or how far it
//! has read its input when it reports none), and bounded tails of stderr.

use super::*;
use ffmpeg_sidecar::event::FfmpegEvent;
use ffmpeg_sidecar::ffmpeg_time_duration::FfmpegTimeDuration;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Logs {
    pub(super) tail: Tail,
    pub(super) log: Tail,
}

pub(super) struct Reader {
    pub(super) on_progress: Option<ProgressFn>,
    pub(super) duration: Option<f64>,
    /// Set once ffmpeg has printed a progress report of its own.
    pub(super) reported: Arc<AtomicBool>,
    pub(super) pulse: Arc<Pulse>,
}

/// When a run last moved forward (its output time grew, or it read more of
/// its input): what the stall watchdog reads.
pub(super) struct Pulse {
    started: Instant,
    /// Milliseconds after `started` of the last advance.
    last_ms: AtomicU64,
    /// The furthest output time reported, microseconds.
    furthest_us: AtomicU64,
}

impl Pulse {
    pub(super) fn new() -> Self {
        Pulse {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            furthest_us: AtomicU64::new(0),
        }
    }

    pub(super) fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// A beat when ffmpeg's output time is past any it reported before.
    fn output_time(&self, secs: f64) {
        let us = (secs * 1e6) as u64;
        if self.furthest_us.fetch_max(us, Ordering::Relaxed) < us {
            self.beat();
        }
    }

    pub(super) fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// Resolves once the run has shown no progress for `after` (never when
/// None): its output time (the reader's beats) and how far it has read its
/// first input, sampled every half second.
pub(super) async fn stalled(
    pid: u32,
    input: Option<PathBuf>,
    pulse: Arc<Pulse>,
    after: Option<Duration>,
) {
    let Some(after) = after else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500).min(after / 2));
    let mut furthest: Option<u64> = None;
    loop {
        tick.tick().await;
        if let Some(input) = input.clone() {
            let pos = tokio::task::spawn_blocking(move || read_position(pid, &input))
                .await
                .ok()
                .flatten();
            if pos.is_some() && pos > furthest {
                furthest = pos;
                pulse.beat();
            }
        }
        if pulse.quiet_for() >= after {
            return;
        }
    }
}

/// The path of the first `-i` input when it is a local file.
pub(super) fn first_input(args: &[String]) -> Option<PathBuf> {
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
pub(super) fn read_position(pid: u32, path: &Path) -> Option<u64> {
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
pub(super) async fn input_position_progress(
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
    pub(super) fn read(self, iter: ffmpeg_sidecar::iter::FfmpegIterator) -> Logs {
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
                    self.pulse.output_time(time_secs);
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
pub(super) struct Tail {
    pub(super) lines: VecDeque<String>,
    pub(super) bytes: usize,
    pub(super) max_lines: usize,
    pub(super) max_bytes: usize,
}

impl Tail {
    pub(super) fn new(max_lines: usize, max_bytes: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            max_lines,
            max_bytes,
        }
    }

    pub(super) fn push(&mut self, line: &str) {
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

    pub(super) fn into_vec(self) -> Vec<String> {
        self.lines.into()
    }
}

pub(super) fn truncate(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}
