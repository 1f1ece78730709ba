//! The stills' share of the transcode's filter graph and output arguments:
//! posters, sprite and preview from one branch of the single decode.

use super::*;
use crate::media::process::path_arg;
use std::path::Path;

impl StillsPlan {
    /// Filter chains reading `[input_label]` (a full-size, native-rate branch
    /// of the decoded master) and one output group per image file.
    pub fn graph(&self, input_label: &str, out_dir: &Path) -> StillsGraph {
        let input = input_label.trim_start_matches('[').trim_end_matches(']');
        let mut chains = Vec::new();
        let mut outputs = Vec::new();
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<String>>();

        let mut branches = vec!["st_poster_in"];
        if self.sprite.is_some() {
            branches.push("st_sprite_in");
        }
        if self.preview.is_some() {
            branches.push("st_preview_in");
        }
        let labels: String = branches.iter().map(|b| format!("[{b}]")).collect();
        chains.push(format!(
            "[{input}]setpts=PTS-STARTPTS,split={}{labels}",
            branches.len()
        ));

        // Poster: candidates in order, first frame wins (see the module docs).
        let (pw, ph) = self.posters[0];
        let fit = format!("scale=w={pw}:h={ph}:flags=bicubic,setsar=1,format=yuv420p");
        let bright = format!(
            "signalstats,metadata=mode=select:key=lavfi.signalstats.YAVG:function=greater:value={BLACK_YAVG}"
        );
        let at = format!("{:.3}", self.poster_at_secs);
        // At time 0 the "before" and "first" candidates are not needed.
        let before = self.poster_at_secs > 0.0;
        let cands = if before {
            "[st_after][st_before][st_at][st_first]"
        } else {
            "[st_after][st_at]"
        };
        let nc = if before { 4 } else { 2 };
        if before {
            chains.push("[st_poster_in]split=4[st_pa][st_pb][st_pc][st_pd]".into());
            chains.push(format!(
                "[st_pb]trim=end={at},{fit},{bright},trim=end_frame=1[st_before]"
            ));
            // Only when the poster time lies past the last video frame (a
            // WebM whose audio outlasts its video) and nothing is bright.
            chains.push(format!("[st_pd]trim=end_frame=1,{fit}[st_first]"));
        } else {
            chains.push("[st_poster_in]split=2[st_pa][st_pc]".into());
        }
        chains.push(format!(
            "[st_pa]trim=start={at},{fit},{bright},trim=end_frame=1[st_after]"
        ));
        chains.push(format!(
            "[st_pc]trim=start={at},trim=end_frame=1,{fit}[st_at]"
        ));
        let n = self.posters.len();
        let picks: String = (0..n).map(|i| format!("[st_pick{i}]")).collect();
        chains.push(format!(
            "{cands}concat=n={nc}:v=1:a=0,trim=end_frame=1,split={n}{picks}"
        ));
        for (i, (w, h)) in self.posters.iter().enumerate() {
            let nf = self.poster_formats.len();
            let outs: String = self
                .poster_formats
                .iter()
                .map(|f| format!("[st_poster_{w}_{}]", f.ext()))
                .collect();
            let scale = if i == 0 {
                "null".to_owned()
            } else {
                format!("scale=w={w}:h={h}:flags=bicubic,setsar=1")
            };
            chains.push(format!("[st_pick{i}]{scale},split={nf}{outs}"));
            for f in &self.poster_formats {
                let mut o = s(&[
                    "-map",
                    &format!("[st_poster_{w}_{}]", f.ext()),
                    "-frames:v",
                    "1",
                ]);
                match f {
                    StillFormat::Jpg => o.extend(s(&["-c:v", "mjpeg", "-q:v", "3"])),
                    StillFormat::Webp => {
                        o.extend(s(&["-c:v", "libwebp", "-quality", "80", "-lossless", "0"]))
                    }
                }
                o.extend(s(&["-map_metadata", "-1"]));
                match f {
                    StillFormat::Jpg => o.extend(s(&["-update", "1", "-f", "image2"])),
                    StillFormat::Webp => o.extend(s(&["-f", "webp"])),
                }
                o.push(path_arg(&out_dir.join(Self::poster_rel(*w, *f))));
                outputs.push(o);
            }
        }

        if let Some(sp) = &self.sprite {
            // The first frame at or after each multiple of the interval.
            chains.push(format!(
                "[st_sprite_in]select=expr=gte(t\\,selected_n*{}),trim=end_frame={},\
                 scale=w={}:h={}:flags=bicubic,setsar=1,tile=layout={}x{}:padding=0:margin=0[st_sprite]",
                sp.interval_secs, sp.tiles, sp.tile_width, sp.tile_height, sp.columns, sp.rows
            ));
            let mut o = s(&[
                "-map",
                "[st_sprite]",
                "-frames:v",
                "1",
                "-c:v",
                "mjpeg",
                "-q:v",
                "4",
                "-map_metadata",
                "-1",
                "-update",
                "1",
                "-f",
                "image2",
            ]);
            o.push(path_arg(&out_dir.join(SPRITE_FILE)));
            outputs.push(o);
        }

        if let Some(p) = &self.preview {
            chains.push(format!(
                "[st_preview_in]trim=start={:.3}:duration={:.3},fps={},trim=end_frame={},\
                 scale=w={}:h={}:flags=bicubic,setsar=1[st_preview]",
                p.start_secs,
                p.secs,
                p.fps,
                p.frames(),
                p.width,
                p.height
            ));
            let mut o = s(&[
                "-map",
                "[st_preview]",
                "-c:v",
                "libwebp_anim",
                "-quality",
                "70",
                "-lossless",
                "0",
                "-loop",
                "0",
                "-map_metadata",
                "-1",
                "-f",
                "webp",
            ]);
            o.push(path_arg(&out_dir.join(PREVIEW_FILE)));
            outputs.push(o);
        }
        StillsGraph { chains, outputs }
    }
}
