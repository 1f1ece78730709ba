//! Stills and previews: poster frames (JPEG and WebP at a few widths), a
//! storyboard sprite with its WebVTT map, and an animated WebP preview.
//!
//! Everything comes from the same decode as the renditions: [`StillsPlan::graph`]
//! returns filter chains that read one branch of the decoded master (the
//! caller's label, e.g. `[still]`) and output argument groups for the same
//! ffmpeg run. Every label created here starts with `st_`.
//!
//! Posters are never black while the master has a frame that is not: the
//! poster is the first frame at or after the poster time whose average luma
//! (`signalstats` YAVG, measured after scaling down to the poster size) is
//! above [`BLACK_YAVG`]; when every frame from there to the end is black, the
//! first bright frame before the poster time is taken instead, and when the
//! whole master is black, the frame at the poster time, or the first frame
//! when the poster time lies past the video's end (a WebM whose audio runs
//! longer; WebM does not count frames). The candidates are concatenated in
//! that order and the first frame wins, so a poster is always written and
//! never costs a second decode.
//!
//! Wiring it into a transcode:
//! 1. `let plan = StillsPlan::for_master(&spec, &probe)?;` (the error names
//!    the field, e.g. "stills.preview.width: 800 is above 640").
//! 2. Split the decoded master once more for the stills, e.g.
//!    `[0:v:0]split=2[main][still]`, and join `plan.graph("still", out_dir).chains`
//!    to the caller's chains with `;`.
//! 3. Append every group of `graph.outputs` after the caller's outputs (each
//!    maps only its own `[st_...]` label: no audio).
//! 4. After ffmpeg succeeds, call [`StillsPlan::write_sidecars`] (the WebVTT
//!    storyboard); [`StillsPlan::files`] lists everything to check and publish.

use super::files::{FileRole, WrittenFile};
mod graph;

use super::probe::Probe;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Frames whose average luma (8-bit, limited range: black is 16) is at or
/// below this count as black for posters.
pub const BLACK_YAVG: u32 = 32;
/// The widest animated preview.
pub const PREVIEW_MAX_WIDTH: u32 = 640;
/// JPEG cannot be taller or wider than this.
const JPEG_MAX_SIDE: u32 = 65_535;

pub const SPRITE_FILE: &str = "sprite.jpg";
pub const STORYBOARD_FILE: &str = "storyboard.vtt";
pub const PREVIEW_FILE: &str = "preview.webp";

/// A poster image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StillFormat {
    Jpg,
    Webp,
}

impl StillFormat {
    pub fn ext(self) -> &'static str {
        match self {
            Self::Jpg => "jpg",
            Self::Webp => "webp",
        }
    }
}

/// What stills a profile asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StillsSpec {
    /// Poster widths in pixels. Widths above the master's are dropped (a
    /// master narrower than all of them gets one poster at its own width).
    /// Default [1280, 640].
    pub poster_widths: Vec<u32>,
    /// Default both, JPEG and WebP.
    pub poster_formats: Vec<StillFormat>,
    /// Master time of the poster. None: a third of the way in, at most 3 s.
    pub poster_at_secs: Option<f64>,
    /// Storyboard sprite and its WebVTT map; null: none.
    pub sprite: Option<SpriteSpec>,
    /// Animated WebP preview; null: none.
    pub preview: Option<PreviewSpec>,
}

impl Default for StillsSpec {
    fn default() -> Self {
        Self {
            poster_widths: vec![1280, 640],
            poster_formats: vec![StillFormat::Jpg, StillFormat::Webp],
            poster_at_secs: None,
            sprite: Some(SpriteSpec::default()),
            preview: Some(PreviewSpec::default()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpriteSpec {
    /// One tile every this many seconds. Default 1.0.
    pub interval_secs: f64,
    /// Tile width in pixels (height keeps the aspect ratio). Default 160.
    pub tile_width: u32,
    /// Tiles per sprite row. Default 10.
    pub columns: u32,
}

impl Default for SpriteSpec {
    fn default() -> Self {
        Self {
            interval_secs: 1.0,
            tile_width: 160,
            columns: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreviewSpec {
    /// Longest preview. Default 3.0.
    pub secs: f64,
    /// Width in pixels, at most 640. Default 480.
    pub width: u32,
    /// Frames per second. Default 10.
    pub fps: u32,
}

impl Default for PreviewSpec {
    fn default() -> Self {
        Self {
            secs: 3.0,
            width: 480,
            fps: 10,
        }
    }
}

/// The stills for one master: every size and time resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct StillsPlan {
    /// Poster sizes, widest first, all even and no wider than the master.
    pub posters: Vec<(u32, u32)>,
    pub poster_formats: Vec<StillFormat>,
    /// Where the search for a non-black poster frame starts, inside the master.
    pub poster_at_secs: f64,
    /// The master's duration: the storyboard covers it.
    pub duration_secs: f64,
    pub sprite: Option<SpritePlan>,
    pub preview: Option<PreviewPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpritePlan {
    pub interval_secs: f64,
    pub tile_width: u32,
    pub tile_height: u32,
    /// Tiles per row (never more than there are tiles).
    pub columns: u32,
    pub rows: u32,
    /// Tiles in the sprite: one per interval started before the master's last frame.
    pub tiles: u32,
}

impl SpritePlan {
    /// The sprite's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.columns * self.tile_width, self.rows * self.tile_height)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreviewPlan {
    /// Master time the preview starts at: the poster time, moved earlier
    /// when less than `secs` of master is left after it.
    pub start_secs: f64,
    pub secs: f64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl PreviewPlan {
    /// Most frames the preview holds: `secs` at `fps` (fps may add one at
    /// the end of its input; the preview is cut there).
    pub fn frames(&self) -> u32 {
        ((self.secs * f64::from(self.fps)).floor() as u32).max(1)
    }
}

/// Filter chains and output arguments for one ffmpeg run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StillsGraph {
    /// Chains for `-filter_complex`, to be joined with `;` to the caller's.
    pub chains: Vec<String>,
    /// One argument group per file: `-map [label]`, encoder and muxer
    /// options, `-f`, and the path last.
    pub outputs: Vec<Vec<String>>,
}

/// `w * num / den` rounded to the nearest even number, at least 2.
fn even_scaled(w: u32, num: u32, den: u32) -> u32 {
    let exact = f64::from(w) * f64::from(num) / f64::from(den.max(1));
    ((exact / 2.0).round() as u32 * 2).max(2)
}

fn even_down(v: u32) -> u32 {
    (v & !1).max(2)
}

fn finite_at_least(field: &str, v: f64, min_exclusive: f64) -> Result<f64, String> {
    if v.is_finite() && v > min_exclusive {
        Ok(v)
    } else {
        Err(format!(
            "stills.{field}: {v} must be a number above {min_exclusive}"
        ))
    }
}

impl StillsPlan {
    /// Resolves `spec` against the master. Errors name the field
    /// ("stills.preview.width: ...").
    pub fn for_master(spec: &StillsSpec, probe: &Probe) -> Result<StillsPlan, String> {
        let video = probe
            .video
            .as_ref()
            .ok_or_else(|| "stills: the master has no video stream".to_owned())?;
        let (mw, mh) = (video.width, video.height);
        if mw < 2 || mh < 2 {
            return Err(format!("stills: the master's size {mw}x{mh} is unusable"));
        }
        let duration = probe.duration_secs;
        if !duration.is_finite() || duration <= 0.0 {
            return Err(format!(
                "stills: the master's duration {duration} is unusable"
            ));
        }
        let fps = if video.fps.is_finite() && video.fps > 0.0 {
            video.fps
        } else {
            30.0
        };
        // Times are placed inside the video stream, which may end before
        // the container (longer audio). Its length is known when the
        // container counts frames (MP4); WebM does not.
        let video_secs = match video.nb_frames {
            Some(n) if n > 0 => (n as f64 / fps).min(duration),
            _ => duration,
        };
        // The last frame starts about one frame before the end.
        let last_frame_at = (video_secs - 1.0 / fps).max(0.0);

        // Posters.
        if spec.poster_widths.is_empty() {
            return Err("stills.poster_widths: list at least one width".into());
        }
        if let Some(w) = spec.poster_widths.iter().find(|w| **w < 16) {
            return Err(format!("stills.poster_widths: {w} is below 16"));
        }
        if spec.poster_formats.is_empty() {
            return Err("stills.poster_formats: list at least one format (jpg, webp)".into());
        }
        let mut widths: Vec<u32> = spec
            .poster_widths
            .iter()
            .map(|w| even_down(*w))
            .filter(|w| *w <= mw)
            .collect();
        if widths.is_empty() {
            widths.push(even_down(mw));
        }
        widths.sort_unstable_by(|a, b| b.cmp(a));
        widths.dedup();
        let posters = widths
            .into_iter()
            .map(|w| (w, even_scaled(w, mh, mw)))
            .collect();
        let mut poster_formats = Vec::new();
        for f in &spec.poster_formats {
            if !poster_formats.contains(f) {
                poster_formats.push(*f);
            }
        }
        let poster_at_secs = match spec.poster_at_secs {
            Some(t) if t.is_finite() && t >= 0.0 => t.min(last_frame_at),
            Some(t) => {
                return Err(format!(
                    "stills.poster_at_secs: {t} must be a number of seconds >= 0"
                ))
            }
            None => (video_secs / 3.0).min(3.0).min(last_frame_at),
        };

        // Sprite.
        let sprite = match &spec.sprite {
            None => None,
            Some(s) => {
                let interval = finite_at_least("sprite.interval_secs", s.interval_secs, 0.0)?;
                if !(16..=640).contains(&s.tile_width) {
                    return Err(format!(
                        "stills.sprite.tile_width: {} must be 16 to 640",
                        s.tile_width
                    ));
                }
                if !(1..=100).contains(&s.columns) {
                    return Err(format!(
                        "stills.sprite.columns: {} must be 1 to 100",
                        s.columns
                    ));
                }
                let tile_width = even_down(s.tile_width.min(mw));
                let tile_height = even_scaled(tile_width, mh, mw);
                let tiles_f = (last_frame_at / interval + 1e-9).floor() + 1.0;
                if tiles_f > 10_000.0 {
                    return Err(format!(
                        "stills.sprite.interval_secs: {interval} gives {tiles_f} tiles for a \
                         {video_secs:.1} s master; at most 10000"
                    ));
                }
                let tiles = tiles_f as u32;
                let columns = s.columns.min(tiles);
                let rows = tiles.div_ceil(columns);
                if rows * tile_height > JPEG_MAX_SIDE || columns * tile_width > JPEG_MAX_SIDE {
                    return Err(format!(
                        "stills.sprite.interval_secs: {interval} makes the sprite {}x{}, \
                         larger than a JPEG can be; use a longer interval or more columns",
                        columns * tile_width,
                        rows * tile_height
                    ));
                }
                Some(SpritePlan {
                    interval_secs: interval,
                    tile_width,
                    tile_height,
                    columns,
                    rows,
                    tiles,
                })
            }
        };

        // Preview.
        let preview = match &spec.preview {
            None => None,
            Some(p) => {
                let secs = finite_at_least("preview.secs", p.secs, 0.0)?;
                if secs > 30.0 {
                    return Err(format!("stills.preview.secs: {secs} is above 30"));
                }
                if p.width > PREVIEW_MAX_WIDTH {
                    return Err(format!(
                        "stills.preview.width: {} is above {PREVIEW_MAX_WIDTH}",
                        p.width
                    ));
                }
                if p.width < 16 {
                    return Err(format!("stills.preview.width: {} is below 16", p.width));
                }
                if !(1..=30).contains(&p.fps) {
                    return Err(format!("stills.preview.fps: {} must be 1 to 30", p.fps));
                }
                let width = even_down(p.width.min(mw));
                let secs = secs.min(video_secs);
                Some(PreviewPlan {
                    start_secs: poster_at_secs.min((video_secs - secs).max(0.0)),
                    secs,
                    width,
                    height: even_scaled(width, mh, mw),
                    fps: p.fps,
                })
            }
        };

        Ok(StillsPlan {
            posters,
            poster_formats,
            poster_at_secs,
            duration_secs: duration,
            sprite,
            preview,
        })
    }

    fn poster_rel(w: u32, f: StillFormat) -> String {
        format!("poster-{w}.{}", f.ext())
    }

    /// Every file the stills produce in `out_dir` (the storyboard is written
    /// by [`Self::write_sidecars`]), posters widest first.
    pub fn files(&self, out_dir: &Path) -> Vec<WrittenFile> {
        let file = |rel: String, role: FileRole| WrittenFile {
            path: out_dir.join(&rel),
            rel,
            role,
            output: None,
        };
        let mut files = Vec::new();
        for (w, _) in &self.posters {
            for f in &self.poster_formats {
                files.push(file(Self::poster_rel(*w, *f), FileRole::Poster));
            }
        }
        if self.sprite.is_some() {
            files.push(file(SPRITE_FILE.into(), FileRole::Sprite));
            files.push(file(STORYBOARD_FILE.into(), FileRole::Storyboard));
        }
        if self.preview.is_some() {
            files.push(file(PREVIEW_FILE.into(), FileRole::Preview));
        }
        files
    }

    /// The WebVTT storyboard: one cue per tile, covering the whole master.
    /// None when the plan has no sprite.
    pub fn storyboard_vtt(&self) -> Option<String> {
        let sp = self.sprite.as_ref()?;
        let mut vtt = String::from("WEBVTT\n");
        for k in 0..sp.tiles {
            let start = f64::from(k) * sp.interval_secs;
            let end = if k + 1 == sp.tiles {
                self.duration_secs
            } else {
                (f64::from(k + 1) * sp.interval_secs).min(self.duration_secs)
            };
            let (col, row) = (k % sp.columns, k / sp.columns);
            let _ = write!(
                vtt,
                "\n{} --> {}\n{SPRITE_FILE}#xywh={},{},{},{}\n",
                crate::media::clock_millis(start),
                crate::media::clock_millis(end),
                col * sp.tile_width,
                row * sp.tile_height,
                sp.tile_width,
                sp.tile_height
            );
        }
        Some(vtt)
    }

    /// Writes the files ffmpeg does not: the WebVTT storyboard.
    pub fn write_sidecars(&self, out_dir: &Path) -> std::io::Result<()> {
        if let Some(vtt) = self.storyboard_vtt() {
            std::fs::create_dir_all(out_dir)?;
            std::fs::write(out_dir.join(STORYBOARD_FILE), vtt)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
