//! Progress of a long step: the running stage reports into a cell, the
//! lease heartbeat picks it up and writes it to the row, the API shows it.

use super::model::StepProgress;
use crate::media::process::Progress;
use std::sync::{Arc, Mutex};

/// Progress the running step reports, picked up by the heartbeat.
#[derive(Clone, Default)]
pub struct ProgressCell(Arc<Mutex<CellState>>);

#[derive(Default)]
struct CellState {
    /// Not yet written by the heartbeat.
    percent: Option<f64>,
    report: Option<StepProgress>,
    /// The highest percent reported per stage: progress never goes back.
    last: Option<(String, f64)>,
}

impl ProgressCell {
    /// A bare percentage (no ffmpeg facts to go with it).
    pub fn set(&self, percent: f64) {
        self.0.lock().unwrap().percent = Some(percent);
    }

    /// A full report. Within one stage the percent only grows: a late or
    /// reordered reading never shows less done than an earlier one.
    pub fn report(&self, mut p: StepProgress) {
        let mut cell = self.0.lock().unwrap();
        if let Some(pc) = p.percent {
            let mut pc = pc.clamp(0.0, 100.0);
            if let Some((stage, high)) = &cell.last {
                if *stage == p.stage {
                    pc = pc.max(*high);
                }
            }
            cell.last = Some((p.stage.clone(), pc));
            p.percent = Some(pc);
        }
        cell.percent = p.percent;
        cell.report = Some(p);
    }

    /// What was reported since the last call.
    pub fn take(&self) -> (Option<f64>, Option<StepProgress>) {
        let mut cell = self.0.lock().unwrap();
        (cell.percent.take(), cell.report.take())
    }
}

/// A report from one of ffmpeg's progress readings. `input_secs` is the
/// duration of what ffmpeg reads (the ETA is the media time left at the
/// current speed).
pub fn ffmpeg_progress(stage: &str, p: &Progress, input_secs: f64) -> StepProgress {
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let speed = (p.speed.is_finite() && p.speed > 0.0).then_some(f64::from(p.speed));
    let eta_secs = match speed {
        Some(s) if input_secs > 0.0 => Some(round1((input_secs - p.time_secs).max(0.0) / s)),
        _ => None,
    };
    StepProgress {
        stage: stage.to_string(),
        percent: p.percent.map(|pc| round1(pc.clamp(0.0, 100.0))),
        fps: (p.fps.is_finite() && p.fps > 0.0).then(|| round1(f64::from(p.fps))),
        speed: speed.map(|s| (s * 1000.0).round() / 1000.0),
        eta_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(percent: Option<f64>, time_secs: f64, speed: f32) -> Progress {
        Progress {
            percent,
            fps: 48.0,
            speed,
            time_secs,
        }
    }

    #[test]
    fn ffmpeg_readings_become_reports_with_an_eta() {
        let r = ffmpeg_progress("transcoding", &reading(Some(25.0), 2.5, 0.5), 10.0);
        assert_eq!(
            r,
            StepProgress {
                stage: "transcoding".into(),
                percent: Some(25.0),
                fps: Some(48.0),
                speed: Some(0.5),
                eta_secs: Some(15.0),
            }
        );
        // No speed yet (ffmpeg prints N/A at first): no ETA, no speed.
        let r = ffmpeg_progress("transcoding", &reading(Some(0.0), 0.0, 0.0), 10.0);
        assert_eq!((r.speed, r.eta_secs), (None, None));
        // Unknown duration: no percent, no ETA.
        let r = ffmpeg_progress("transcoding", &reading(None, 3.0, 2.0), 0.0);
        assert_eq!((r.percent, r.eta_secs), (None, None));
        // Past the end (rounding): never below zero.
        let r = ffmpeg_progress("transcoding", &reading(Some(100.0), 10.2, 1.0), 10.0);
        assert_eq!(r.eta_secs, Some(0.0));
    }

    #[test]
    fn the_cell_hands_over_the_latest_report_once_and_never_goes_back() {
        let cell = ProgressCell::default();
        assert_eq!(cell.take(), (None, None));
        let at = |pc: f64| ffmpeg_progress("transcoding", &reading(Some(pc), pc / 10.0, 1.0), 10.0);
        cell.report(at(10.0));
        cell.report(at(40.0));
        let (percent, report) = cell.take();
        assert_eq!(percent, Some(40.0));
        assert_eq!(report.unwrap().percent, Some(40.0));
        assert_eq!(cell.take(), (None, None), "taken once");
        // A reading lower than one already shown is raised to it...
        cell.report(at(30.0));
        let (percent, report) = cell.take();
        assert_eq!(percent, Some(40.0));
        assert_eq!(report.unwrap().percent, Some(40.0));
        // ...within its stage only: another stage starts from its own zero.
        cell.report(ffmpeg_progress(
            "checking",
            &reading(Some(5.0), 0.5, 1.0),
            10.0,
        ));
        assert_eq!(cell.take().0, Some(5.0));
        // Successive reports seen by the heartbeat never decrease.
        let mut seen = Vec::new();
        for pc in [50.0, 45.0, 70.0, 69.9, 100.0, 120.0] {
            cell.report(at(pc));
            seen.push(cell.take().0.unwrap());
        }
        assert_eq!(seen, [50.0, 50.0, 70.0, 70.0, 100.0, 100.0]);
    }
}
