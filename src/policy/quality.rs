//! The quality a request's `outputQuality` buys.

/// Minimum SSIM a rendition must reach for a request's `outputQuality`:
/// linear and monotonic from `at_min` (quality 20) to `at_max` (quality 99).
pub fn ssim_floor(output_quality: u32, at_min: f64, at_max: f64) -> f64 {
    let q = output_quality.clamp(20, 99) as f64;
    at_min + (at_max - at_min) * (q - 20.0) / 79.0
}
