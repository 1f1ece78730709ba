//! A request, as policy describes the master it asks for. The conversion
//! lives here so policy never depends on Runware's wire types.

use super::{GenerationRequest, OutputFormat};
use crate::policy::{Container, MasterSpec};

impl From<OutputFormat> for Container {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Mp4 => Container::Mp4,
            OutputFormat::Mov => Container::Mov,
            OutputFormat::Webm => Container::Webm,
        }
    }
}

/// The request's spelling of a container (an upload shown as a request).
impl From<Container> for OutputFormat {
    fn from(c: Container) -> Self {
        match c {
            Container::Mp4 => OutputFormat::Mp4,
            Container::Mov => OutputFormat::Mov,
            Container::Webm => OutputFormat::Webm,
        }
    }
}

impl GenerationRequest {
    /// What the generator's master must be to match this request.
    pub fn master_spec(&self) -> MasterSpec {
        let (width, height) = self.dimensions().unzip();
        MasterSpec {
            width,
            height,
            duration_secs: self.effective_duration().map(f64::from),
            sound: self.sound(),
            container: self.effective_output_format().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: serde_json::Value) -> GenerationRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_request_becomes_the_spec_of_its_master() {
        let spec = request(serde_json::json!({
            "width": 1920, "height": 1080, "duration": 10, "outputFormat": "WEBM",
            "providerSettings": {"klingai": {"sound": true}},
        }))
        .master_spec();
        assert_eq!(
            spec,
            MasterSpec {
                width: Some(1920),
                height: Some(1080),
                duration_secs: Some(10.0),
                sound: true,
                container: Container::Webm,
            }
        );
        // Unsaid: any size, the default length, MP4, silent.
        let spec = request(serde_json::json!({})).master_spec();
        assert_eq!((spec.width, spec.height), (None, None));
        assert_eq!(spec.duration_secs, Some(5.0));
        assert!(!spec.sound);
        assert_eq!(spec.container, Container::Mp4);
        for (f, c) in [
            (OutputFormat::Mp4, Container::Mp4),
            (OutputFormat::Mov, Container::Mov),
            (OutputFormat::Webm, Container::Webm),
        ] {
            assert_eq!(Container::from(f), c);
            assert_eq!(c.as_str(), f.extension());
        }
    }
}
