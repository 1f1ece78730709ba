//! Hostile media against the child limits: a 5 KB MP4 whose SPS claims
//! 16000x16000 makes an unlimited ffprobe allocate ~760 MB of frames. Under
//! the limits it is contained and ends with a plain reason.

use super::*;
use crate::media::testutil;
use crate::media::MediaConfig;

/// Reads bits of an RBSP, most significant first.
struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        let b = (self.bytes[self.pos / 8] >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        u32::from(b)
    }

    fn bits(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |v, _| v << 1 | self.bit())
    }

    /// Exp-Golomb ue(v).
    fn ue(&mut self) -> u32 {
        let mut zeros = 0;
        while self.bit() == 0 {
            zeros += 1;
        }
        (1 << zeros) - 1 + self.bits(zeros)
    }
}

#[derive(Default)]
struct Writer {
    bits: Vec<u8>,
}

impl Writer {
    fn put(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            self.bits.push(((v >> i) & 1) as u8);
        }
    }

    fn ue(&mut self, v: u32) {
        let v = v + 1;
        let n = 32 - v.leading_zeros();
        self.put(0, n - 1);
        self.put(v, n);
    }

    fn bytes(mut self) -> Vec<u8> {
        while !self.bits.len().is_multiple_of(8) {
            self.bits.push(0);
        }
        self.bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |b, bit| b << 1 | bit))
            .collect()
    }
}

fn unescape(nal: &[u8]) -> Vec<u8> {
    let (mut out, mut zeros) = (Vec::with_capacity(nal.len()), 0);
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn escape(rbsp: &[u8]) -> Vec<u8> {
    let (mut out, mut zeros) = (Vec::with_capacity(rbsp.len() + 4), 0);
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A Baseline-profile SPS NAL (header byte included) rewritten to claim
/// `mbs` x `mbs` macroblocks, without cropping or VUI, padded with zero
/// bytes to its old length so the MP4 around it needs no other change.
fn enlarged_sps(sps: &[u8], mbs: u32) -> Vec<u8> {
    let rbsp = unescape(&sps[1..]);
    let (mut r, mut w) = (
        Bits {
            bytes: &rbsp,
            pos: 0,
        },
        Writer::default(),
    );
    let profile = r.bits(8);
    assert_eq!(profile, 66, "the test clip is Baseline");
    w.put(profile, 8);
    w.put(r.bits(16), 16); // constraint flags, level
    w.ue(r.ue()); // seq_parameter_set_id
    w.ue(r.ue()); // log2_max_frame_num_minus4
    let poc_type = r.ue();
    w.ue(poc_type);
    assert!(poc_type != 1, "x264 never writes POC type 1");
    if poc_type == 0 {
        w.ue(r.ue());
    }
    w.ue(r.ue()); // max_num_ref_frames
    w.put(r.bit(), 1); // gaps_in_frame_num_allowed
    r.ue();
    r.ue();
    w.ue(mbs - 1);
    w.ue(mbs - 1);
    let frame_mbs_only = r.bit();
    w.put(frame_mbs_only, 1);
    if frame_mbs_only == 0 {
        w.put(r.bit(), 1);
    }
    w.put(r.bit(), 1); // direct_8x8_inference
    w.put(0, 1); // no cropping
    w.put(0, 1); // no VUI
    w.put(1, 1); // rbsp_stop_one_bit
    let mut out = vec![sps[0]];
    out.extend(escape(&w.bytes()));
    assert!(out.len() <= sps.len(), "the new SPS fits in the old one");
    out.resize(sps.len(), 0);
    out
}

/// A tiny real clip whose avcC SPS claims 16000x16000.
async fn hostile_master(runner: &Runner, dir: &Path) -> PathBuf {
    let small = dir.join("small.mp4");
    let args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x64:r=24:d=0.5",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-pix_fmt",
        "yuv420p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([path_arg(&small)])
    .collect();
    runner
        .ffmpeg(args, RunOptions::new("tiny clip", Duration::from_secs(60)))
        .await
        .expect("ffmpeg renders the tiny clip");
    let mut bytes = std::fs::read(&small).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"avcC")
        .expect("an avcC box")
        + 4;
    // configurationVersion, profile, compatibility, level, lengthSize, numSPS, spsLength
    let len = usize::from(u16::from_be_bytes([bytes[at + 6], bytes[at + 7]]));
    let sps = at + 8..at + 8 + len;
    let new = enlarged_sps(&bytes[sps.clone()], 1000);
    bytes[sps].copy_from_slice(&new);
    let hostile = dir.join("hostile.mp4");
    std::fs::write(&hostile, &bytes).unwrap();
    hostile
}

#[tokio::test]
async fn a_hostile_sps_is_contained_by_the_memory_limit_with_a_plain_reason() {
    let Some(plain) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hostile = hostile_master(&plain, dir.path()).await;
    assert!(std::fs::metadata(&hostile).unwrap().len() < 64 * 1024);

    // The shipped limits.
    let config = MediaConfig::default();
    let runner = Runner::new(&config);
    let e = runner.ffprobe(&hostile).await.unwrap_err();
    match &e {
        ProcessError::LimitExceeded { label, limit, .. } => {
            assert_eq!(label, "ffprobe");
            assert_eq!(*limit, Limit::Memory(config.ffprobe_memory_limit_mb));
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(
        e.is_input_fault(),
        "the master's fault: rejected, not retried"
    );
    assert_eq!(
        e.reason(),
        format!(
            "ffprobe exceeded its memory limit ({} MiB)",
            config.ffprobe_memory_limit_mb
        )
    );

    // The same file without a limit is what the limit prevents: ffprobe
    // takes it and reports the claimed size.
    let unlimited = Runner::new(&MediaConfig {
        ffprobe_memory_limit_mb: 0,
        ..MediaConfig::default()
    });
    let probe = unlimited.ffprobe(&hostile).await.unwrap();
    let v = probe.video.expect("a video stream");
    assert_eq!((v.width, v.height), (16000, 16000));
}

#[tokio::test]
async fn a_real_4k_probe_fits_the_default_limit_and_a_tight_one_is_reported() {
    let Some(plain) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("uhd.mp4");
    let args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=3840x2160:r=24:d=0.25",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([path_arg(&master)])
    .collect();
    plain
        .ffmpeg(args, RunOptions::new("uhd clip", Duration::from_secs(120)))
        .await
        .expect("ffmpeg renders a 4K clip under the default ffmpeg limits");
    let probe = Runner::new(&MediaConfig::default())
        .ffprobe(&master)
        .await
        .expect("a real 4K master probes under the default limit");
    assert_eq!(probe.video.map(|v| (v.width, v.height)), Some((3840, 2160)));

    // 8 MiB cannot even hold ffprobe's libraries.
    let tight = Runner::new(&MediaConfig {
        ffprobe_memory_limit_mb: 8,
        ..MediaConfig::default()
    });
    let e = tight.ffprobe(&master).await.unwrap_err();
    assert!(
        matches!(
            e,
            ProcessError::LimitExceeded {
                limit: Limit::Memory(8),
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_cpu_time_limit_stops_a_run_with_a_plain_reason() {
    let Some(_) = testutil::runner() else {
        return;
    };
    let runner = Runner::new(&MediaConfig {
        ffmpeg_cpu_limit_secs: 1,
        ..MediaConfig::default()
    });
    // An endless encode: only the CPU limit can end it before the deadline.
    let args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1280x720:r=60",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-f",
        "null",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = runner
        .ffmpeg(args, RunOptions::new("endless", Duration::from_secs(120)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ProcessError::LimitExceeded {
                limit: Limit::Cpu(1),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.reason(), "endless exceeded its CPU-time limit (1 s)");
}
