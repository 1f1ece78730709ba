//! Per-model limits. Runware publishes them on each model page; keeping them
//! in config lets an operator follow a model change without a rebuild.

use serde::{Deserialize, Serialize};

/// The AIR of the model reelay is built around.
pub const KLING_O3_4K: &str = "klingai:kling-video@o3-4k";

/// One model's limits. Every field defaults to the Kling O3 4K values, so a
/// TOML table only needs the keys it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    /// Runware model identifier, sent as `model`.
    pub air: String,
    /// Allowed `width`x`height` pairs, e.g. "3840x2160".
    pub sizes: Vec<String>,
    /// Allowed `resolution` presets, e.g. "4k".
    pub resolutions: Vec<String>,
    /// Shortest `duration` in whole seconds.
    pub min_duration: u32,
    /// Longest `duration` in whole seconds.
    pub max_duration: u32,
    /// Frame rate of the generated master (not published by Runware; Kling renders 24).
    pub fps: u32,
    /// Provider price in USD per generated second.
    pub price_per_second: f64,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self::kling_o3_4k()
    }
}

impl ModelSpec {
    /// Kling VIDEO 3.0 Omni 4K as published on Runware's model page.
    pub fn kling_o3_4k() -> Self {
        Self {
            air: KLING_O3_4K.to_string(),
            sizes: vec![
                "3840x2160".to_string(),
                "2160x3840".to_string(),
                "2880x2880".to_string(),
            ],
            resolutions: vec!["4k".to_string()],
            min_duration: 3,
            max_duration: 15,
            fps: 24,
            price_per_second: 0.42,
        }
    }

    /// The allowed sizes as (width, height); entries that do not parse are skipped
    /// (see [`ModelSpec::check`]).
    pub fn parsed_sizes(&self) -> Vec<(u32, u32)> {
        self.sizes.iter().filter_map(|s| parse_size(s)).collect()
    }

    pub fn allows_size(&self, width: u32, height: u32) -> bool {
        self.parsed_sizes().contains(&(width, height))
    }

    pub fn allows_resolution(&self, resolution: &str) -> bool {
        self.resolutions.iter().any(|r| r == resolution)
    }

    /// Provider cost of `results` clips of `duration_s` seconds each.
    pub fn estimate_cost(&self, duration_s: u32, results: u32) -> f64 {
        self.price_per_second * f64::from(duration_s) * f64::from(results)
    }

    /// Rejects a spec that cannot be enforced, so a config typo fails at startup.
    pub fn check(&self) -> Result<(), String> {
        if self.air.trim().is_empty() {
            return Err("model air must not be empty".into());
        }
        if self.sizes.is_empty() {
            return Err(format!("model {}: sizes must not be empty", self.air));
        }
        if let Some(bad) = self.sizes.iter().find(|s| parse_size(s).is_none()) {
            return Err(format!(
                "model {}: size {bad:?} is not WIDTHxHEIGHT",
                self.air
            ));
        }
        if self.min_duration == 0 || self.min_duration > self.max_duration {
            return Err(format!(
                "model {}: need 1 <= min_duration ({}) <= max_duration ({})",
                self.air, self.min_duration, self.max_duration
            ));
        }
        if self.fps == 0 {
            return Err(format!("model {}: fps must be positive", self.air));
        }
        if !(self.price_per_second.is_finite() && self.price_per_second >= 0.0) {
            return Err(format!(
                "model {}: price_per_second must be a non-negative number",
                self.air
            ));
        }
        Ok(())
    }
}

/// Parses "3840x2160" into (3840, 2160). Both sides must be positive integers.
pub fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.trim().split_once(['x', 'X'])?;
    let w: u32 = w.trim().parse().ok()?;
    let h: u32 = h.trim().parse().ok()?;
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_matches_the_kling_o3_4k_page() {
        let spec = ModelSpec::kling_o3_4k();
        assert_eq!(spec.air, "klingai:kling-video@o3-4k");
        assert_eq!(
            spec.parsed_sizes(),
            vec![(3840, 2160), (2160, 3840), (2880, 2880)]
        );
        assert_eq!(spec.resolutions, vec!["4k"]);
        assert_eq!(
            (spec.min_duration, spec.max_duration, spec.fps),
            (3, 15, 24)
        );
        assert!((spec.estimate_cost(5, 2) - 4.2).abs() < 1e-9);
        spec.check().unwrap();
    }

    #[test]
    fn parse_size_accepts_only_positive_pairs() {
        assert_eq!(parse_size("3840x2160"), Some((3840, 2160)));
        assert_eq!(parse_size(" 2880X2880 "), Some((2880, 2880)));
        for bad in ["", "3840", "0x10", "10x0", "ax1", "1x-2", "1x2x3"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn toml_table_overrides_only_the_keys_it_names() {
        let toml = r#"
            air = "klingai:kling-video@o3-4k"
            max_duration = 10
            price_per_second = 0.5
        "#;
        let spec: ModelSpec = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(spec.max_duration, 10);
        assert_eq!(spec.price_per_second, 0.5);
        assert_eq!(spec.sizes, ModelSpec::kling_o3_4k().sizes);
        spec.check().unwrap();
    }

    #[test]
    fn check_rejects_unusable_specs() {
        let mut s = ModelSpec::kling_o3_4k();
        s.sizes.push("big".into());
        assert!(s.check().is_err());
        let mut s = ModelSpec::kling_o3_4k();
        s.min_duration = 16;
        assert!(s.check().is_err());
    }
}
