//! Defaults and accessors shared by the generation request and the task.

use super::*;
use uuid::Uuid;

/// Borrowed view of the fields a user request and a task share, so the
/// defaults and the validation rules are written once for both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamsView<'a> {
    pub model: Option<&'a str>,
    pub positive_prompt: Option<&'a str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub resolution: Option<&'a str>,
    pub duration: Option<u32>,
    pub number_results: Option<u32>,
    pub output_type: Option<&'a str>,
    pub output_quality: Option<u32>,
    pub delivery_method: Option<&'a str>,
    pub ttl: Option<u32>,
    pub inputs: Option<&'a Inputs>,
    pub provider_settings: Option<&'a ProviderSettings>,
}

impl<'a> ParamsView<'a> {
    pub fn kling(&self) -> Option<&'a KlingSettings> {
        self.provider_settings.and_then(|p| p.klingai.as_ref())
    }

    pub fn multi_prompt(&self) -> Option<&'a [PromptSegment]> {
        self.kling().and_then(|k| k.multi_prompt.as_deref())
    }

    pub fn input_video(&self) -> Option<&'a str> {
        self.inputs.and_then(|i| i.video.as_deref())
    }

    pub fn effective_duration(&self) -> Option<u32> {
        match self.input_video() {
            Some(_) => None,
            None => Some(self.duration.unwrap_or(DEFAULT_DURATION)),
        }
    }

    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.width.zip(self.height)
    }

    pub fn sound(&self) -> bool {
        self.kling().and_then(|k| k.sound).unwrap_or(false)
    }
}

macro_rules! shared_accessors {
    ($ty:ty) => {
        impl $ty {
            /// Output length in seconds: `duration` or 5; `None` with
            /// `inputs.video`, whose length the output takes.
            pub fn effective_duration(&self) -> Option<u32> {
                self.view().effective_duration()
            }

            pub fn effective_output_quality(&self) -> u32 {
                self.output_quality.unwrap_or(DEFAULT_OUTPUT_QUALITY)
            }

            pub fn effective_number_results(&self) -> u32 {
                self.number_results.unwrap_or(DEFAULT_NUMBER_RESULTS)
            }

            pub fn effective_output_format(&self) -> OutputFormat {
                self.output_format.unwrap_or_default()
            }

            /// Whether native audio was asked for (`providerSettings.klingai.sound`).
            pub fn sound(&self) -> bool {
                self.view().sound()
            }

            /// `(width, height)` when both are given.
            pub fn dimensions(&self) -> Option<(u32, u32)> {
                self.view().dimensions()
            }

            pub fn multi_prompt(&self) -> Option<&[PromptSegment]> {
                self.view().multi_prompt()
            }
        }
    };
}

shared_accessors!(GenerationRequest);
shared_accessors!(VideoInferenceTask);

impl GenerationRequest {
    pub(crate) fn view(&self) -> ParamsView<'_> {
        ParamsView {
            model: self.model.as_deref(),
            positive_prompt: self.positive_prompt.as_deref(),
            width: self.width,
            height: self.height,
            resolution: self.resolution.as_deref(),
            duration: self.duration,
            number_results: self.number_results,
            output_type: self.output_type.as_deref(),
            output_quality: self.output_quality,
            delivery_method: self.delivery_method.as_deref(),
            ttl: self.ttl,
            inputs: self.inputs.as_ref(),
            provider_settings: self.provider_settings.as_ref(),
        }
    }

    /// Builds the task for one variation. `numberResults` is forced to 1
    /// (one uploadEndpoint per task), delivery is async with a URL output, cost
    /// is always requested; every user field is kept as given.
    pub fn to_task(
        &self,
        task_uuid: Uuid,
        model_air: &str,
        upload_endpoint: Option<&str>,
        webhook_url: Option<&str>,
    ) -> VideoInferenceTask {
        VideoInferenceTask {
            task_type: TASK_TYPE_VIDEO_INFERENCE.to_string(),
            task_uuid,
            model: model_air.to_string(),
            positive_prompt: self.positive_prompt.clone(),
            width: self.width,
            height: self.height,
            resolution: self.resolution.clone(),
            duration: self.duration,
            number_results: Some(1),
            output_type: Some(OUTPUT_TYPE_URL.to_string()),
            output_format: self.output_format,
            output_quality: self.output_quality,
            webhook_url: webhook_url.map(str::to_string),
            delivery_method: Some(DELIVERY_ASYNC.to_string()),
            upload_endpoint: upload_endpoint.map(str::to_string),
            safety: self.safety.clone(),
            ttl: self.ttl,
            include_cost: Some(true),
            inputs: self.inputs.clone(),
            provider_settings: self.provider_settings.clone(),
        }
    }
}

impl VideoInferenceTask {
    pub(crate) fn view(&self) -> ParamsView<'_> {
        ParamsView {
            model: Some(self.model.as_str()),
            positive_prompt: self.positive_prompt.as_deref(),
            width: self.width,
            height: self.height,
            resolution: self.resolution.as_deref(),
            duration: self.duration,
            number_results: self.number_results,
            output_type: self.output_type.as_deref(),
            output_quality: self.output_quality,
            delivery_method: self.delivery_method.as_deref(),
            ttl: self.ttl,
            inputs: self.inputs.as_ref(),
            provider_settings: self.provider_settings.as_ref(),
        }
    }
}
