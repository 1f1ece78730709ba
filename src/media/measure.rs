//! Objective quality of renditions against the master (SSIM and PSNR, and
//! VMAF when the installed ffmpeg has the `libvmaf` filter).
//!
//! One ffmpeg run decodes the master once, scales a copy to each rendition's
//! size (bicubic, as the transcode does) and compares frame by frame. When
//! the transcode wrote the master's picture at the largest size of a crop
//! ([`StoredReference`]: the very frames that size's encoder got), the
//! references are scaled from that file instead and the 4K master is not
//! decoded again (see [`Target::stored_reference`]); for
//! VMAF, every rendition and the master are scaled to one common size
//! ([`vmaf_scoring_size`]) and scored with libvmaf's built-in model. Scores
//! come from the filters' per-frame stats files (and libvmaf's JSON log),
//! which are easier to parse reliably than the summary lines in the log.

use super::process::{
    input_args, own_input_args, reference_input_args, ProcessError, RunOptions, Runner, ScratchDir,
};
use super::profile::Crop;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    pub name: String,
    /// Mean SSIM over frames ("All" = Y, U and V weighted by size): 1.0 is identical.
    pub ssim: f64,
    /// PSNR in dB of the mean squared error over all frames and planes (as
    /// ffmpeg's "average"). Identical content is reported as 100.
    pub psnr: f64,
    /// Mean VMAF (0-100); None when it was not measured.
    #[serde(default)]
    pub vmaf: Option<f64>,
    /// The common size VMAF was scored at (see [`vmaf_scoring_size`]).
    #[serde(default)]
    pub vmaf_scored_at: Option<FrameSize>,
}

/// Reported for identical content (infinite PSNR does not fit in JSON).
pub const PSNR_IDENTICAL: f64 = 100.0;

/// The ffmpeg filter that computes VMAF.
pub const VMAF_FILTER: &str = "libvmaf";

/// Both sides of every comparison are retimed by frame number before the
/// comparing filters pair them: their frame sync pairs by timestamp, and a
/// WebM's millisecond timestamps (0, 42, 83 ms at 24 fps against the
/// master's 0, 41.67, 83.33 ms) would pair about every other frame with
/// its predecessor (measured: VMAF 70.7 instead of 89.4 for a near-lossless
/// VP9 720p). Renditions keep the master's rate (QC checks it), so frame n
/// is compared with frame n.
const BY_INDEX: &str = "settb=1/1000,setpts=N*40";

/// A rendition to score: its file, size, and the crop of the master it was
/// made from (the reference gets the same crop before scaling).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub crop: Option<Crop>,
    /// An HLS media playlist reelay wrote (read with the HLS demuxer).
    pub playlist: bool,
    /// The transcode's corrections of the master's picture
    /// (`transcode::PictureFix::filters`, "" or ending in a comma), applied
    /// to the reference too so it is compared with what was made from it.
    pub reference_prefix: String,
    /// The master's corrected, cropped picture as the transcode wrote it
    /// for this rendition's crop. Used when no side of a comparison would
    /// need it enlarged (its size covers the rendition's and, with VMAF,
    /// the scoring size); otherwise the reference comes from the master.
    pub stored_reference: Option<StoredReference>,
}

/// Frames the transcode wrote for QC (raw YUV 4:2:0 in NUT): the master
/// after its picture corrections and `crop`, scaled (bicubic) to the
/// largest output size of that crop, exactly as that size's encoder got
/// them. Smaller rungs' references are scaled down from it as the
/// transcode's own cascade does, so the quality pass reads this instead
/// of decoding the master again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReference {
    pub path: PathBuf,
    #[serde(default)]
    pub crop: Option<Crop>,
    pub width: u32,
    pub height: u32,
}

impl StoredReference {
    /// Raw frame bytes of `frames` frames at `width`x`height` (4:2:0).
    pub fn estimated_bytes(width: u32, height: u32, frames: f64) -> u64 {
        (f64::from(width) * f64::from(height) * 1.5 * frames.max(0.0)) as u64
    }

    fn covers(&self, size: FrameSize) -> bool {
        size.width <= self.width && size.height <= self.height
    }
}

impl Target {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, width: u32, height: u32) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            width,
            height,
            crop: None,
            playlist: false,
            reference_prefix: String::new(),
            stored_reference: None,
        }
    }
}

/// A picture size, as VMAF was scored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Display for FrameSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// The display VMAF is scored for: libvmaf's built-in model (`vmaf_v0.6.1`)
/// predicts quality on a 1080p screen, so no rendition is scored above it.
pub const VMAF_DISPLAY: FrameSize = FrameSize {
    width: 1920,
    height: 1080,
};

/// libvmaf's built-in model, named explicitly so a build whose default
/// changes still scores with the model the floors were set for.
pub const VMAF_MODEL: &str = "vmaf_v0.6.1";

/// The one size every rendition is scored at for VMAF: the largest
/// rendition, fitted into [`VMAF_DISPLAY`] (turned for a portrait picture).
/// Scoring each rung at its own size compares a 480p rung on a 480p screen
/// and a 1080p one on a 1080p screen, and the smaller can score higher (a
/// false "quality inversion"); at one size the scores rank as a viewer
/// switching rungs on one screen sees them.
pub fn vmaf_scoring_size(targets: &[Target]) -> Option<FrameSize> {
    let top = targets
        .iter()
        .max_by_key(|t| u64::from(t.width) * u64::from(t.height))?;
    let display = if top.height > top.width {
        FrameSize {
            width: VMAF_DISPLAY.height,
            height: VMAF_DISPLAY.width,
        }
    } else {
        VMAF_DISPLAY
    };
    Some(fit(top.width, top.height, display))
}

/// Rendition `t` at the common scoring size: exactly `common` when its
/// aspect is within 1 % of it (854x480 beside 1920x1080), else its own
/// aspect fitted inside `common` (a cropped square next to 16:9 rungs).
pub fn vmaf_size_for(t: &Target, common: FrameSize) -> FrameSize {
    let aspect = |w: u32, h: u32| f64::from(w) / f64::from(h);
    let (own, box_) = (
        aspect(t.width, t.height),
        aspect(common.width, common.height),
    );
    if (own / box_ - 1.0).abs() <= 0.01 {
        return common;
    }
    let scale = (f64::from(common.width) / f64::from(t.width))
        .min(f64::from(common.height) / f64::from(t.height));
    FrameSize {
        width: even(f64::from(t.width) * scale),
        height: even(f64::from(t.height) * scale),
    }
}

/// `w`x`h` shrunk to fit inside `max` (never enlarged), even sides.
fn fit(w: u32, h: u32, max: FrameSize) -> FrameSize {
    if w <= max.width && h <= max.height {
        return FrameSize {
            width: w,
            height: h,
        };
    }
    let scale = (f64::from(max.width) / f64::from(w)).min(f64::from(max.height) / f64::from(h));
    FrameSize {
        width: even(f64::from(w) * scale).min(max.width),
        height: even(f64::from(h) * scale).min(max.height),
    }
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// What the VMAF half of a quality run needs: a JSON log per rendition, the
/// size each is scored at, and libvmaf's threads (it runs single-threaded
/// unless told).
#[derive(Debug, Clone, PartialEq)]
pub struct VmafPass {
    pub logs: Vec<PathBuf>,
    pub sizes: Vec<FrameSize>,
    pub threads: usize,
}

impl VmafPass {
    /// Every rendition at the one common size (see [`vmaf_scoring_size`]).
    pub fn new(targets: &[Target], logs: Vec<PathBuf>, threads: usize) -> Self {
        let sizes = match vmaf_scoring_size(targets) {
            Some(common) => targets.iter().map(|t| vmaf_size_for(t, common)).collect(),
            None => Vec::new(),
        };
        VmafPass {
            logs,
            sizes,
            threads: threads.max(1),
        }
    }
}

/// Whether a quality run over `targets` (with VMAF or not) decodes the
/// master: some comparison has no stored reference that covers it.
pub fn reads_master(targets: &[Target], vmaf: bool) -> bool {
    let pass = vmaf.then(|| VmafPass::new(targets, Vec::new(), 1));
    Sources::new(targets, pass.as_ref()).master
}

/// Scores each rendition `(name, file, width, height)` against `master`.
pub async fn ssim_psnr(
    runner: &Runner,
    master: &Path,
    renditions: &[Target],
    deadline: Duration,
) -> Result<Vec<QualityScore>, ProcessError> {
    measure_quality(runner, master, renditions, deadline, false, None).await
}

/// SSIM and PSNR of each rendition, plus VMAF when `vmaf` (the caller checks
/// [`Runner::has_filter`] for [`VMAF_FILTER`]), all in one run that decodes
/// the master once. `master_duration` is the master's length from its probe
/// (for progress and limits); None probes the master here.
pub async fn measure_quality(
    runner: &Runner,
    master: &Path,
    renditions: &[Target],
    deadline: Duration,
    vmaf: bool,
    master_duration: Option<f64>,
) -> Result<Vec<QualityScore>, ProcessError> {
    if renditions.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(t) = renditions.iter().find(|t| t.width < 2 || t.height < 2) {
        return Err(ProcessError::Invalid(format!(
            "rendition {} has no size",
            t.name
        )));
    }
    let scratch = ScratchDir::new("measure")?;
    let files: Vec<(PathBuf, PathBuf)> = (0..renditions.len())
        .map(|i| {
            (
                scratch.path().join(format!("ssim{i}.log")),
                scratch.path().join(format!("psnr{i}.log")),
            )
        })
        .collect();

    let vmaf_pass = vmaf.then(|| {
        let logs = (0..renditions.len())
            .map(|i| scratch.path().join(format!("vmaf{i}.json")))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        VmafPass::new(renditions, logs, cores.min(16))
    });
    let sources = Sources::new(renditions, vmaf_pass.as_ref());
    let args = build_args(master, renditions, &files, vmaf_pass.as_ref(), &sources);

    let duration = match master_duration {
        Some(d) => Some(d),
        None => runner.ffprobe(master).await.map(|p| p.duration_secs).ok(),
    };
    let mut opts = RunOptions::new("quality measurement", deadline);
    if sources.master {
        opts = opts.untrusted();
    }
    opts.input_duration_secs = duration;
    runner.ffmpeg(args, opts).await?;

    let mut scores = Vec::with_capacity(renditions.len());
    for (i, (Target { name, .. }, (ssim_file, psnr_file))) in
        renditions.iter().zip(&files).enumerate()
    {
        let ssim = mean_ssim(&tokio::fs::read_to_string(ssim_file).await?)
            .ok_or_else(|| ProcessError::BadOutput(format!("no SSIM frames for {name}")))?;
        let psnr = mean_psnr(&tokio::fs::read_to_string(psnr_file).await?)
            .ok_or_else(|| ProcessError::BadOutput(format!("no PSNR frames for {name}")))?;
        let (vmaf, vmaf_scored_at) = match &vmaf_pass {
            Some(v) => {
                let text = tokio::fs::read_to_string(&v.logs[i]).await?;
                let score = mean_vmaf(&text)
                    .ok_or_else(|| ProcessError::BadOutput(format!("no VMAF score for {name}")))?;
                (Some(score), Some(v.sizes[i]))
            }
            None => (None, None),
        };
        scores.push(QualityScore {
            name: name.clone(),
            ssim,
            psnr,
            vmaf,
            vmaf_scored_at,
        });
    }
    Ok(scores)
}

/// The measurement run's arguments: the master, each rendition, the graph,
/// and one null output per score.
fn build_args(
    master: &Path,
    renditions: &[Target],
    files: &[(PathBuf, PathBuf)],
    vmaf: Option<&VmafPass>,
    sources: &Sources,
) -> Vec<String> {
    let mut args = Vec::new();
    if sources.master {
        args.extend(input_args(master, true));
    }
    for t in renditions {
        if t.playlist {
            args.extend(own_input_args(&t.path));
        } else {
            args.extend(input_args(&t.path, true));
        }
    }
    for path in &sources.stored {
        args.extend(reference_input_args(path));
    }
    args.extend([
        "-filter_complex".to_owned(),
        filter_graph(renditions, files, vmaf, sources),
    ]);
    for i in 0..renditions.len() {
        let mut labels = vec![format!("[s{i}]"), format!("[p{i}]")];
        if vmaf.is_some() {
            labels.push(format!("[q{i}]"));
        }
        for label in labels {
            args.extend(["-map", &label, "-f", "null", "-"].map(String::from));
        }
    }
    args
}

/// Where each comparison's reference frames come from: the master, or a
/// stored reference (`stored[k]`) that covers every size the comparison
/// reads it at. The master is decoded only when some target needs it.
#[derive(Debug, Clone, PartialEq)]
struct Sources {
    /// Per target: `Some(k)` reads `stored[k]`, None the master.
    of: Vec<Option<usize>>,
    stored: Vec<PathBuf>,
    master: bool,
}

impl Sources {
    fn new(targets: &[Target], vmaf: Option<&VmafPass>) -> Self {
        let mut stored: Vec<PathBuf> = Vec::new();
        let of: Vec<Option<usize>> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let r = t.stored_reference.as_ref()?;
                let own = FrameSize {
                    width: t.width,
                    height: t.height,
                };
                let scored = vmaf.and_then(|v| v.sizes.get(i).copied());
                if r.crop != t.crop || !r.covers(own) || scored.is_some_and(|s| !r.covers(s)) {
                    return None;
                }
                Some(match stored.iter().position(|p| *p == r.path) {
                    Some(k) => k,
                    None => {
                        stored.push(r.path.clone());
                        stored.len() - 1
                    }
                })
            })
            .collect();
        let master = of.iter().any(Option::is_none);
        Sources { of, stored, master }
    }

    /// The input index of rendition `i` (inputs: the master when needed,
    /// the renditions, the stored references).
    fn rendition_input(&self, i: usize) -> usize {
        usize::from(self.master) + i
    }

    fn stored_input(&self, k: usize) -> usize {
        usize::from(self.master) + self.of.len() + k
    }
}

/// The references' copies: one chain per distinct reference (its source,
/// picture fix, crop and size), each split to every comparison that reads
/// it, so a reference several comparisons share (VMAF's common size, the
/// top rung's SSIM at the same size, an MP4 and an HLS variant of one rung)
/// is scaled once. `source` None is the master, `Some(k)` stored reference k.
#[derive(Default)]
struct References {
    chains: Vec<(Option<usize>, String, Vec<String>)>,
}

impl References {
    fn add(&mut self, source: Option<usize>, chain: String, label: String) {
        match self
            .chains
            .iter_mut()
            .find(|(s, c, _)| *s == source && *c == chain)
        {
            Some((_, _, labels)) => labels.push(label),
            None => self.chains.push((source, chain, vec![label])),
        }
    }
}

/// Inputs as [`Sources`] numbers them. Both sides start at 0 so frames
/// pair up even when a container starts a few ms late. With VMAF, each
/// rendition and its reference are also scaled to the common size. A
/// stored reference already has the picture fix and crop: its chain only
/// scales (a no-op at its own size).
fn filter_graph(
    targets: &[Target],
    files: &[(PathBuf, PathBuf)],
    vmaf: Option<&VmafPass>,
    sources: &Sources,
) -> String {
    let mut refs = References::default();
    let mut chains = Vec::new();
    let copies = if vmaf.is_some() { 3 } else { 2 };
    let reference = |i: usize, t: &Target, w: u32, h: u32| {
        let scale = format!("scale=w={w}:h={h}:flags=bicubic,setsar=1,format=yuv420p,{BY_INDEX}");
        match sources.of[i] {
            Some(_) => scale,
            None => {
                let crop = t
                    .crop
                    .map(|c| format!("{},", c.filter()))
                    .unwrap_or_default();
                format!("{}{crop}{scale}", t.reference_prefix)
            }
        }
    };
    for (i, (t, (ssim_file, psnr_file))) in targets.iter().zip(files).enumerate() {
        let source = sources.of[i];
        let own = reference(i, t, t.width, t.height);
        refs.add(source, own.clone(), format!("[ra{i}]"));
        refs.add(source, own, format!("[rb{i}]"));
        let mut ds = format!("[da{i}][db{i}]");
        if vmaf.is_some() {
            ds.push_str(&format!("[dc{i}]"));
        }
        chains.push(format!(
            "[{}:v:0]setpts=PTS-STARTPTS,setsar=1,format=yuv420p,{BY_INDEX},split={copies}{ds}",
            sources.rendition_input(i)
        ));
        chains.push(format!(
            "[da{i}][ra{i}]ssim=stats_file={}[s{i}]",
            escape_filter_value(&ssim_file.to_string_lossy())
        ));
        chains.push(format!(
            "[db{i}][rb{i}]psnr=stats_file={}[p{i}]",
            escape_filter_value(&psnr_file.to_string_lossy())
        ));
        if let Some(v) = vmaf {
            let FrameSize { width, height } = v.sizes[i];
            refs.add(source, reference(i, t, width, height), format!("[rc{i}]"));
            chains.push(format!(
                "[dc{i}]scale=w={width}:h={height}:flags=bicubic,setsar=1,format=yuv420p[dv{i}]"
            ));
            // libvmaf: distorted first, reference second.
            chains.push(format!(
                "[dv{i}][rc{i}]{VMAF_FILTER}=model=version={VMAF_MODEL}:n_threads={}:log_fmt=json:log_path={}[q{i}]",
                v.threads,
                escape_filter_value(&v.logs[i].to_string_lossy())
            ));
        }
    }
    // Each source decoded once, split to its chains.
    let mut inputs: Vec<Option<usize>> = Vec::new();
    for (source, _, _) in &refs.chains {
        if !inputs.contains(source) {
            inputs.push(*source);
        }
    }
    let mut graph = Vec::new();
    for source in &inputs {
        let input = source.map_or(0, |k| sources.stored_input(k));
        let mine: Vec<usize> = (0..refs.chains.len())
            .filter(|c| refs.chains[*c].0 == *source)
            .collect();
        let labels: String = mine.iter().map(|c| copy_label(*source, *c)).collect();
        graph.push(format!(
            "[{input}:v:0]setpts=PTS-STARTPTS,split={}{labels}",
            mine.len()
        ));
    }
    for (c, (source, chain, labels)) in refs.chains.iter().enumerate() {
        graph.push(format!(
            "{}{chain},split={}{}",
            copy_label(*source, c),
            labels.len(),
            labels.concat()
        ));
    }
    graph.extend(chains);
    graph.join(";")
}

/// The pad of reference chain `c`'s copy of its source: `[m{c}]` of the
/// master, `[r{k}c{c}]` of stored reference k.
fn copy_label(source: Option<usize>, c: usize) -> String {
    match source {
        Some(k) => format!("[r{k}c{c}]"),
        None => format!("[m{c}]"),
    }
}

/// The mean VMAF of a libvmaf JSON log: `pooled_metrics.vmaf.mean`
/// (libvmaf 2.x), the top-level "VMAF score" (1.x), or the mean of the
/// per-frame scores.
fn mean_vmaf(log: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(log).ok()?;
    let finite = |x: Option<f64>| x.filter(|x| x.is_finite());
    finite(
        v.pointer("/pooled_metrics/vmaf/mean")
            .and_then(|x| x.as_f64()),
    )
    .or_else(|| finite(v.get("VMAF score").and_then(|x| x.as_f64())))
    .or_else(|| {
        let frames = v.get("frames")?.as_array()?;
        mean(frames.iter().filter_map(|f| {
            let m = f.get("metrics")?;
            finite(m.get("vmaf").or_else(|| m.get("VMAF_score"))?.as_f64())
        }))
    })
}

/// Escapes a filter option value for use inside a filtergraph: first as an
/// option value (`\ ' :`), then for the graph (`\ ' [ ] , ;`).
pub fn escape_filter_value(value: &str) -> String {
    fn escape(s: &str, special: &[char]) -> String {
        let mut out = String::with_capacity(s.len() + 8);
        for c in s.chars() {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }
    let option = escape(value, &['\\', '\'', ':']);
    escape(&option, &['\\', '\'', '[', ']', ',', ';'])
}

/// Mean of the per-frame "All:" values of an ssim stats file.
fn mean_ssim(stats: &str) -> Option<f64> {
    mean(stats.lines().filter_map(|l| field(l, "All:")))
}

/// PSNR of the mean of the per-frame "mse_avg:" values (8-bit, peak 255).
fn mean_psnr(stats: &str) -> Option<f64> {
    let mse = mean(stats.lines().filter_map(|l| field(l, "mse_avg:")))?;
    if mse <= 0.0 {
        return Some(PSNR_IDENTICAL);
    }
    Some((10.0 * (255.0f64 * 255.0 / mse).log10()).min(PSNR_IDENTICAL))
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests;
