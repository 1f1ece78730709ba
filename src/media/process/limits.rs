//! Resource limits of every child: memory (`RLIMIT_DATA`) and CPU time
//! (`RLIMIT_CPU`), set between fork and exec, and the reading of an exit
//! that a limit caused. A hostile master (an SPS that claims 16000x16000)
//! makes the decoder allocate frames of that size: the limit turns that into
//! a failed allocation and a plain reason instead of hundreds of MB.
//!
//! `RLIMIT_DATA` (Linux 4.7+) counts the heap and private writable
//! mappings, which is where frames live, and not the address space that
//! glibc reserves per thread and never touches (`RLIMIT_AS` would count
//! that, and it grows with the number of cores).

use super::ProcessError;
use std::fmt;
use std::process::ExitStatus;

/// Seconds past the CPU limit at which the kernel sends SIGKILL (the soft
/// limit sends SIGXCPU first, which ffmpeg answers by stopping).
const CPU_GRACE_SECS: u64 = 5;

/// The limits of one kind of child. 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildLimits {
    pub memory_mb: u64,
    pub cpu_secs: u64,
}

/// Which limit a child ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Memory, in MiB.
    Memory(u64),
    /// CPU time, in seconds.
    Cpu(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Memory(mb) => write!(f, "memory limit ({mb} MiB)"),
            Limit::Cpu(secs) => write!(f, "CPU-time limit ({secs} s)"),
        }
    }
}

impl ChildLimits {
    /// Sets the limits in the child, between fork and exec.
    pub fn apply(self, cmd: &mut std::process::Command) {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            if self.memory_mb == 0 && self.cpu_secs == 0 {
                return;
            }
            let memory = self.memory_mb.saturating_mul(1024 * 1024);
            let cpu = self.cpu_secs;
            // SAFETY: setrlimit is async-signal-safe and the closure touches
            // only the two integers it owns.
            unsafe {
                cmd.pre_exec(move || {
                    if memory > 0 {
                        set(libc::RLIMIT_DATA, memory, memory)?;
                    }
                    if cpu > 0 {
                        set(libc::RLIMIT_CPU, cpu, cpu + CPU_GRACE_SECS)?;
                    }
                    Ok(())
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = cmd;
    }

    /// The limit that ended (or spoiled) a run, judged from how it ended:
    /// killed by SIGXCPU (or ffmpeg's own "Received signal 24"), or an
    /// allocation that failed ("Cannot allocate memory", a frame buffer the
    /// decoder could not get, x264's failed malloc, a library the loader
    /// could not map, or a crash that an allocation failure causes
    /// in code that does not check: SIGSEGV, SIGABRT, SIGBUS). A run that
    /// exits 0 after a failed frame allocation (ffprobe does: it reports
    /// the stream anyway) counts too: its output cannot be trusted.
    pub fn hit(self, status: &ExitStatus, stderr: &[String]) -> Option<Limit> {
        let signal = signal_of(status);
        let says = |needle: &str| stderr.iter().any(|l| l.contains(needle));
        // ffmpeg catches SIGXCPU, stops, and says "Exiting normally,
        // received signal 24." (or, after more, "Received > 3 system signals").
        if self.cpu_secs > 0
            && (signal == Some(libc::SIGXCPU)
                || says("received signal 24")
                || says("Received signal 24")
                || says("Received > 3 system signals"))
        {
            return Some(Limit::Cpu(self.cpu_secs));
        }
        let crashed = matches!(signal, Some(libc::SIGSEGV | libc::SIGABRT | libc::SIGBUS));
        if self.memory_mb > 0
            && (says("Cannot allocate memory")
                || says("get_buffer() failed")
                || says("malloc of size")
                || says("failed to map segment")
                || says("Out of memory")
                || crashed)
        {
            return Some(Limit::Memory(self.memory_mb));
        }
        None
    }

    /// A run that reached a limit, as [`ProcessError::LimitExceeded`].
    pub(super) fn exceeded(
        self,
        label: &str,
        status: &ExitStatus,
        stderr_tail: &[String],
    ) -> Option<ProcessError> {
        self.hit(status, stderr_tail)
            .map(|limit| ProcessError::LimitExceeded {
                label: label.to_owned(),
                limit,
                stderr_tail: stderr_tail[stderr_tail.len().saturating_sub(super::TAIL_LINES)..]
                    .to_vec(),
            })
    }

    /// A failed run as [`ProcessError::LimitExceeded`] when a limit ended it.
    pub(super) fn classify(
        self,
        label: &str,
        status: &ExitStatus,
        stderr_tail: Vec<String>,
    ) -> ProcessError {
        match self.hit(status, &stderr_tail) {
            Some(limit) => ProcessError::LimitExceeded {
                label: label.to_owned(),
                limit,
                stderr_tail,
            },
            None => ProcessError::Failed {
                label: label.to_owned(),
                code: status.code(),
                stderr_tail,
            },
        }
    }
}

#[cfg(target_os = "linux")]
fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: a plain system call on a value we own.
    if unsafe { libc::setrlimit(resource, &lim) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn signal_of(status: &ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal()
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}
