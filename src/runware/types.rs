//! Wire types for Runware's `videoInference` task and its responses.
//!
//! Request-side types deny unknown fields: the provider page is our contract,
//! and a typo must fail loudly instead of being dropped. Response-side types
//! accept anything extra and degrade odd values to `None`, because a provider
//! adding a field must not break polling.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

pub const TASK_TYPE_VIDEO_INFERENCE: &str = "videoInference";
pub const TASK_TYPE_GET_RESPONSE: &str = "getResponse";
pub const OUTPUT_TYPE_URL: &str = "URL";
pub const DELIVERY_ASYNC: &str = "async";
/// Seconds the provider renders when `duration` is absent.
pub const DEFAULT_DURATION: u32 = 5;
pub const DEFAULT_OUTPUT_QUALITY: u32 = 95;
pub const DEFAULT_NUMBER_RESULTS: u32 = 1;

// ---------------------------------------------------------------------------
// Request side
// ---------------------------------------------------------------------------

/// The task object POSTed to Runware (inside a one-element array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoInferenceTask {
    /// Always "videoInference"; a `String` so the simulator can reject other values.
    pub task_type: String,
    #[serde(rename = "taskUUID")]
    pub task_uuid: Uuid,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_results: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_quality: Option<u32>,
    #[serde(
        rename = "webhookURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cost: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_settings: Option<ProviderSettings>,
}

/// The `generation` object of reelay's own API: the task fields a user may
/// set. Fields reelay owns (taskType, taskUUID, uploadEndpoint, webhookURL,
/// includeCost) are unknown here and rejected. `deliveryMethod` and
/// `outputType` are accepted so pasted Runware params work, but only with the
/// one value Runware allows for video.
///
/// `numberResults` means "variations": reelay submits that many tasks with
/// `numberResults: 1` each, because one task has only one uploadEndpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerationRequest {
    /// Defaults to the configured model; if given it must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_results: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_quality: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_settings: Option<ProviderSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OutputFormat {
    #[default]
    Mp4,
    Webm,
    Mov,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Mp4 => "mp4",
            OutputFormat::Webm => "webm",
            OutputFormat::Mov => "mov",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Mp4 => "video/mp4",
            OutputFormat::Webm => "video/webm",
            OutputFormat::Mov => "video/quicktime",
        }
    }

    /// The value as sent on the wire ("MP4", "WEBM", "MOV").
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Mp4 => "MP4",
            OutputFormat::Webm => "WEBM",
            OutputFormat::Mov => "MOV",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Safety {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_content: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SafetyMode>,
}

/// none = no check, fast = key frames, full = every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SafetyMode {
    None,
    Fast,
    Full,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_images: Option<Vec<FrameImage>>,
    /// Source video for prompt-based editing; the output takes its size and length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_videos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements: Option<Vec<Element>>,
}

/// A frame image: a bare image reference, or one pinned to a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FrameImage {
    Plain(String),
    Positioned(PositionedFrameImage),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PositionedFrameImage {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FramePosition>,
}

impl FrameImage {
    pub fn image(&self) -> &str {
        match self {
            FrameImage::Plain(s) => s,
            FrameImage::Positioned(p) => &p.image,
        }
    }

    pub fn frame(&self) -> Option<FramePosition> {
        match self {
            FrameImage::Plain(_) => None,
            FrameImage::Positioned(p) => p.frame,
        }
    }
}

// Hand-written instead of `untagged` so errors inside the object form keep
// their field path and message (untagged only says "did not match any variant").
impl<'de> Deserialize<'de> for FrameImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FrameImage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an image string or an object {image, frame}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FrameImage, E> {
                Ok(FrameImage::Plain(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FrameImage, E> {
                Ok(FrameImage::Plain(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FrameImage, A::Error> {
                PositionedFrameImage::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FrameImage::Positioned)
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a frame image goes. The wire accepts exactly `"first"`, `"last"`,
/// `0` and `-1`; the spelling is kept so a task round-trips unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePosition {
    First,
    Last,
    Index0,
    IndexMinus1,
}

impl FramePosition {
    /// True for the first frame, false for the last ("first" == 0, "last" == -1).
    pub fn is_first(self) -> bool {
        matches!(self, FramePosition::First | FramePosition::Index0)
    }
}

impl Serialize for FramePosition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FramePosition::First => s.serialize_str("first"),
            FramePosition::Last => s.serialize_str("last"),
            FramePosition::Index0 => s.serialize_i64(0),
            FramePosition::IndexMinus1 => s.serialize_i64(-1),
        }
    }
}

impl<'de> Deserialize<'de> for FramePosition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "\"first\", \"last\", 0 or -1";
        struct V;
        impl Visitor<'_> for V {
            type Value = FramePosition;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FramePosition, E> {
                match v {
                    "first" => Ok(FramePosition::First),
                    "last" => Ok(FramePosition::Last),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FramePosition, E> {
                match v {
                    0 => Ok(FramePosition::Index0),
                    -1 => Ok(FramePosition::IndexMinus1),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FramePosition, E> {
                match v {
                    0 => Ok(FramePosition::Index0),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A reusable asset, referenced in prompts as `<<<element_N>>>` (1-based, in order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Element {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontal_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub videos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voices: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub klingai: Option<KlingSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KlingSettings {
    /// Native audio generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<bool>,
    /// Multi-shot segments; their durations must add up to `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_prompt: Option<Vec<PromptSegment>>,
    /// Keep the reference video's sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_original_sound: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptSegment {
    pub prompt: String,
    pub duration: u32,
}

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

/// The poll task: `[{"taskType":"getResponse","taskUUID":...}]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetResponseTask {
    #[serde(rename = "taskType")]
    pub task_type: String,
    #[serde(rename = "taskUUID")]
    pub task_uuid: Uuid,
}

impl GetResponseTask {
    pub fn new(task_uuid: Uuid) -> Self {
        Self {
            task_type: TASK_TYPE_GET_RESPONSE.to_string(),
            task_uuid,
        }
    }
}

// ---------------------------------------------------------------------------
// Response side
// ---------------------------------------------------------------------------

/// `{ "data": [...], "errors": [...] }`, plus the legacy singular `error`
/// (object or list) with an optional top-level `taskUUID`/`taskType`.
/// Empty lists are left out when serialized: the official SDK treats any
/// `errors` key, even `[]`, as a failure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(
        default,
        deserialize_with = "list_or_one",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub data: Vec<TaskItem>,
    #[serde(
        default,
        deserialize_with = "list_or_one",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub errors: Vec<ApiError>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<OneOrMany<ApiError>>,
    /// Only in the legacy shape `{ "error": {...}, "taskUUID": ... }`.
    #[serde(
        rename = "taskUUID",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub task_uuid: Option<Uuid>,
    #[serde(
        rename = "taskType",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub task_type: Option<String>,
}

impl Envelope {
    pub fn with_data(data: Vec<TaskItem>) -> Self {
        Self {
            data,
            ..Self::default()
        }
    }

    pub fn with_errors(errors: Vec<ApiError>) -> Self {
        Self {
            errors,
            ..Self::default()
        }
    }

    /// Every error the response carries, whatever shape it came in: `errors`,
    /// singular `error`, and `data` items with `status: "error"`. Each gets
    /// the taskUUID of the item or envelope it came with when it lacks one.
    pub fn all_errors(&self) -> Vec<ApiError> {
        let mut out = self.errors.clone();
        match &self.error {
            Some(OneOrMany::One(e)) => out.push(e.clone()),
            Some(OneOrMany::Many(list)) => out.extend(list.iter().cloned()),
            None => {}
        }
        for e in &mut out {
            if e.task_uuid.is_none() {
                e.task_uuid = self.task_uuid;
            }
            if e.task_type.is_none() {
                e.task_type = self.task_type.clone();
            }
        }
        for item in self.data.iter().filter(|i| i.is_error()) {
            let mut e = item.error.clone().unwrap_or_else(|| {
                ApiError::new(
                    ApiError::UNKNOWN,
                    "task reported status \"error\" without details",
                )
            });
            if e.task_uuid.is_none() {
                e.task_uuid = item.task_uuid;
            }
            if e.task_type.is_none() {
                e.task_type = item.task_type.clone();
            }
            if e.status.is_none() {
                e.status = Some("error".to_string());
            }
            out.push(e);
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    // `Many` first: a derived struct also accepts a JSON array, so `One` would swallow `[]`.
    Many(Vec<T>),
    One(T),
}

/// One element of `data`: an ACK, a processing status, a result, or (newer
/// schema) an error item with a nested `error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskItem {
    #[serde(
        rename = "taskType",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub task_type: Option<String>,
    #[serde(
        rename = "taskUUID",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub task_uuid: Option<Uuid>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<TaskStatus>,
    #[serde(
        rename = "videoUUID",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_uuid: Option<Uuid>,
    #[serde(
        rename = "videoURL",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_url: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub seed: Option<i64>,
    /// USD, present with `includeCost: true`.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub cost: Option<f64>,
    /// 0-100 while processing; accepted as integer, float or numeric string.
    #[serde(
        default,
        deserialize_with = "lenient_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress: Option<f64>,
    #[serde(
        rename = "NSFWContent",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub nsfw_content: Option<bool>,
    #[serde(
        rename = "resultIndex",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub result_index: Option<u32>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<ApiError>,
}

impl TaskItem {
    /// The bare ACK `{taskType, taskUUID}`.
    pub fn ack(task_type: &str, task_uuid: Uuid) -> Self {
        Self {
            task_type: Some(task_type.to_string()),
            task_uuid: Some(task_uuid),
            ..Self::default()
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.status, Some(TaskStatus::Error))
    }

    pub fn is_success(&self) -> bool {
        matches!(self.status, Some(TaskStatus::Success))
    }
}

/// `processing` | `success` | `error`; anything else (older "pending",
/// "queued", ...) is kept verbatim and means "still running".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Processing,
    Success,
    Error,
    Other(String),
}

impl TaskStatus {
    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::Processing => "processing",
            TaskStatus::Success => "success",
            TaskStatus::Error => "error",
            TaskStatus::Other(s) => s,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskStatus::Success | TaskStatus::Error)
    }
}

impl From<&str> for TaskStatus {
    fn from(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "processing" => TaskStatus::Processing,
            "success" => TaskStatus::Success,
            "error" => TaskStatus::Error,
            _ => TaskStatus::Other(s.to_string()),
        }
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| TaskStatus::from(s.as_str()))
    }
}

/// Runware's error object. Everything but `code` is optional, and even
/// `code` defaults to "unknown": providers are still standardising these.
/// A bare string is accepted as the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ApiErrorRepr")]
pub struct ApiError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// The parameter's type as Runware names it (wire key `type`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub param_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    #[serde(rename = "taskUUID", skip_serializing_if = "Option::is_none")]
    pub task_uuid: Option<Uuid>,
    #[serde(rename = "taskType", skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    #[serde(rename = "allowedValues", skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<Value>>,
    /// "error" on async task failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Upstream provider detail, string or object.
    #[serde(rename = "responseContent", skip_serializing_if = "Option::is_none")]
    pub response_content: Option<Value>,
}

impl ApiError {
    pub const UNKNOWN: &'static str = "unknown";
    pub const CONFLICT_TASK_UUID: &'static str = "conflictTaskUUID";

    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            parameter: None,
            param_type: None,
            documentation: None,
            task_uuid: None,
            task_type: None,
            allowed_values: None,
            status: None,
            response_content: None,
        }
    }

    pub fn with_parameter(mut self, parameter: impl Into<String>) -> Self {
        self.parameter = Some(parameter.into());
        self
    }

    pub fn with_task(mut self, task_type: impl Into<String>, task_uuid: Uuid) -> Self {
        self.task_type = Some(task_type.into());
        self.task_uuid = Some(task_uuid);
        self
    }

    pub fn with_allowed_values(mut self, values: Vec<Value>) -> Self {
        self.allowed_values = Some(values);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(p) = &self.parameter {
            write!(f, " (parameter {p})")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ApiErrorRepr {
    Text(String),
    Object(Box<RawApiError>),
}

#[derive(Deserialize)]
struct RawApiError {
    #[serde(default, deserialize_with = "lenient")]
    code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    parameter: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    param_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    documentation: Option<String>,
    #[serde(rename = "taskUUID", default, deserialize_with = "lenient")]
    task_uuid: Option<Uuid>,
    #[serde(rename = "taskType", default, deserialize_with = "lenient")]
    task_type: Option<String>,
    #[serde(rename = "allowedValues", default, deserialize_with = "lenient")]
    allowed_values: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "lenient")]
    status: Option<String>,
    #[serde(rename = "responseContent", default)]
    response_content: Option<Value>,
}

impl From<ApiErrorRepr> for ApiError {
    fn from(r: ApiErrorRepr) -> Self {
        match r {
            ApiErrorRepr::Text(message) => ApiError::new(ApiError::UNKNOWN, message),
            ApiErrorRepr::Object(r) => ApiError {
                code: r
                    .code
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| ApiError::UNKNOWN.to_string()),
                message: r.message.unwrap_or_default(),
                parameter: r.parameter,
                param_type: r.param_type,
                documentation: r.documentation,
                task_uuid: r.task_uuid,
                task_type: r.task_type,
                allowed_values: r.allowed_values,
                status: r.status,
                response_content: r.response_content,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Lenient field decoding for responses
// ---------------------------------------------------------------------------

/// Decodes a field as `T`, or `None` when it is null or of another shape.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// A number given as integer, float or numeric string.
fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Text, or any other JSON rendered as text so detail is not lost.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// A list, a lone element or null; elements that do not decode are dropped.
fn list_or_one<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(match Value::deserialize(d)? {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        one => serde_json::from_value(one).into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_task_json() -> Value {
        json!({
            "taskType": "videoInference",
            "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
            "model": "klingai:kling-video@o3-4k",
            "positivePrompt": "Slow aerial drone shot",
            "width": 3840, "height": 2160, "resolution": "4k", "duration": 5,
            "numberResults": 1, "outputType": "URL", "outputFormat": "MOV",
            "outputQuality": 95,
            "webhookURL": "https://hooks.example.com/runware?token=abc",
            "deliveryMethod": "async",
            "uploadEndpoint": "https://bucket.s3.amazonaws.com/out.mp4?X-Amz-Signature=x",
            "safety": {"checkContent": true, "mode": "fast"},
            "ttl": 3600, "includeCost": true,
            "inputs": {
                "frameImages": [
                    "https://img.example.com/a.png",
                    {"image": "https://img.example.com/b.png", "frame": "last"},
                    {"image": "https://img.example.com/c.png", "frame": 0},
                    {"image": "https://img.example.com/d.png", "frame": -1},
                    {"image": "https://img.example.com/e.png"}
                ],
                "video": "https://v.example.com/in.mp4",
                "referenceVideos": ["https://v.example.com/ref.mp4"],
                "elements": [{
                    "id": "hero", "description": "the hero",
                    "frontalImage": "https://img.example.com/f.png",
                    "images": ["https://img.example.com/g.png"],
                    "voices": ["https://a.example.com/v.mp3"],
                    "tags": ["person"]
                }, {"id": "car", "videos": ["https://v.example.com/car.mp4"]}]
            },
            "providerSettings": {"klingai": {
                "sound": true, "keepOriginalSound": false,
                "multiPrompt": [{"prompt": "shot one", "duration": 2},
                                {"prompt": "shot two", "duration": 3}]
            }}
        })
    }

    #[test]
    fn every_task_field_round_trips_with_its_exact_wire_name() {
        let v = full_task_json();
        let task: VideoInferenceTask = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&task).unwrap(), v);
        assert_eq!(task.effective_output_format().extension(), "mov");
        assert_eq!(task.effective_output_format().mime(), "video/quicktime");
        let frames: Vec<_> = task
            .inputs
            .as_ref()
            .unwrap()
            .frame_images
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| f.frame())
            .collect();
        assert_eq!(
            frames,
            vec![
                None,
                Some(FramePosition::Last),
                Some(FramePosition::Index0),
                Some(FramePosition::IndexMinus1),
                None
            ]
        );
    }

    #[test]
    fn absent_options_are_left_out_of_the_wire_form() {
        let task = GenerationRequest {
            positive_prompt: Some("a cat".into()),
            ..Default::default()
        }
        .to_task(Uuid::nil(), "m", None, None);
        let v = serde_json::to_value(&task).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        let mut expected = vec![
            "deliveryMethod",
            "includeCost",
            "model",
            "numberResults",
            "outputType",
            "positivePrompt",
            "taskType",
            "taskUUID",
        ];
        expected.sort();
        assert_eq!(keys, expected);
    }

    #[test]
    fn to_task_forces_one_result_async_url_and_cost_and_keeps_user_fields() {
        let req: GenerationRequest = serde_json::from_value(json!({
            "positivePrompt": "a cat", "width": 2880, "height": 2880, "duration": 7,
            "numberResults": 3, "outputFormat": "WEBM", "outputQuality": 80, "ttl": 600,
            "safety": {"mode": "full"},
            "providerSettings": {"klingai": {"sound": true}}
        }))
        .unwrap();
        let id = Uuid::new_v4();
        let t = req.to_task(id, "air", Some("https://up"), Some("https://hook"));
        assert_eq!(t.task_type, "videoInference");
        assert_eq!(t.task_uuid, id);
        assert_eq!(t.model, "air");
        assert_eq!(t.number_results, Some(1));
        assert_eq!(t.delivery_method.as_deref(), Some("async"));
        assert_eq!(t.output_type.as_deref(), Some("URL"));
        assert_eq!(t.include_cost, Some(true));
        assert_eq!(t.upload_endpoint.as_deref(), Some("https://up"));
        assert_eq!(t.webhook_url.as_deref(), Some("https://hook"));
        assert_eq!(t.dimensions(), Some((2880, 2880)));
        assert_eq!(t.duration, Some(7));
        assert_eq!(t.output_format, Some(OutputFormat::Webm));
        assert_eq!(t.output_quality, Some(80));
        assert_eq!(t.ttl, Some(600));
        assert_eq!(t.safety, req.safety);
        assert!(t.sound());
        assert_eq!(req.effective_number_results(), 3);
    }

    #[test]
    fn accessors_fall_back_to_the_documented_defaults() {
        let req = GenerationRequest::default();
        assert_eq!(req.effective_duration(), Some(5));
        assert_eq!(req.effective_output_quality(), 95);
        assert_eq!(req.effective_number_results(), 1);
        assert_eq!(req.effective_output_format(), OutputFormat::Mp4);
        assert!(!req.sound());
        assert_eq!(req.dimensions(), None);
        let edit = GenerationRequest {
            inputs: Some(Inputs {
                video: Some("https://v/in.mp4".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(edit.effective_duration(), None);
    }

    #[test]
    fn frame_position_accepts_exactly_four_values() {
        for (v, p) in [
            (json!("first"), FramePosition::First),
            (json!("last"), FramePosition::Last),
            (json!(0), FramePosition::Index0),
            (json!(-1), FramePosition::IndexMinus1),
        ] {
            let got: FramePosition = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(got, p);
            assert_eq!(serde_json::to_value(got).unwrap(), v);
        }
        for bad in [
            json!("middle"),
            json!(1),
            json!(-2),
            json!(0.5),
            json!(null),
        ] {
            assert!(
                serde_json::from_value::<FramePosition>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn task_status_keeps_unknown_values_as_still_running() {
        let s: TaskStatus = serde_json::from_value(json!("pending")).unwrap();
        assert_eq!(s, TaskStatus::Other("pending".into()));
        assert!(!s.is_terminal());
        let s: TaskStatus = serde_json::from_value(json!("SUCCESS")).unwrap();
        assert_eq!(s, TaskStatus::Success);
        assert_eq!(
            serde_json::to_value(TaskStatus::Processing).unwrap(),
            json!("processing")
        );
    }

    #[test]
    fn task_item_tolerates_odd_values_and_extra_fields() {
        let item: TaskItem = serde_json::from_value(json!({
            "taskType": "videoInference",
            "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
            "status": "queued", "progress": "42.5", "seed": "not a number",
            "cost": 0.18, "NSFWContent": false, "resultIndex": 1,
            "videoUUID": "b7db282d-2943-4f12-992f-77df3ad3ec71",
            "somethingNew": {"x": 1}
        }))
        .unwrap();
        assert_eq!(item.status, Some(TaskStatus::Other("queued".into())));
        assert_eq!(item.progress, Some(42.5));
        assert_eq!(item.seed, None);
        assert_eq!(item.cost, Some(0.18));
        assert_eq!(item.nsfw_content, Some(false));
        assert_eq!(item.result_index, Some(1));
        let item: TaskItem = serde_json::from_value(json!({"progress": 30})).unwrap();
        assert_eq!(item.progress, Some(30.0));
    }

    #[test]
    fn api_error_defaults_code_and_reads_every_documented_field() {
        let e: ApiError = serde_json::from_value(json!({
            "code": "unsupportedDuration",
            "message": "Invalid value for duration parameter.",
            "parameter": "duration", "type": "float",
            "documentation": "https://runware.ai/docs",
            "taskUUID": "24cd5dff-cb81-4db5-8506-b72a9425f9d1",
            "taskType": "videoInference",
            "allowedValues": [6], "status": "error",
            "responseContent": {"detail": "x"}, "extra": 1
        }))
        .unwrap();
        assert_eq!(e.code, "unsupportedDuration");
        assert_eq!(e.param_type.as_deref(), Some("float"));
        assert_eq!(e.allowed_values, Some(vec![json!(6)]));
        assert_eq!(e.response_content, Some(json!({"detail": "x"})));
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["type"], "float");
        assert_eq!(back["allowedValues"], json!([6]));
        assert!(back.get("extra").is_none());

        let e: ApiError = serde_json::from_value(json!({"message": "boom"})).unwrap();
        assert_eq!(e.code, "unknown");
        let e: ApiError = serde_json::from_value(json!("plain text")).unwrap();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("unknown", "plain text")
        );
    }

    #[test]
    fn all_errors_merges_every_shape() {
        let a = "11111111-1111-4111-8111-111111111111";
        let b = "22222222-2222-4222-8222-222222222222";
        let env: Envelope = serde_json::from_value(json!({
            "data": [
                {"taskUUID": a, "status": "processing"},
                {"taskUUID": b, "status": "error", "error": {"code": "providerError", "message": "x"}},
                {"taskUUID": a, "status": "error"}
            ],
            "errors": [{"code": "timeoutProvider", "taskUUID": a}],
            "error": [{"code": "legacyList"}],
        }))
        .unwrap();
        let errs = env.all_errors();
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.code.as_str(), e.task_uuid.map(|u| u.to_string())))
            .collect();
        assert_eq!(
            got,
            vec![
                ("timeoutProvider", Some(a.to_string())),
                ("legacyList", None),
                ("providerError", Some(b.to_string())),
                ("unknown", Some(a.to_string())),
            ]
        );

        let legacy: Envelope = serde_json::from_value(json!({
            "error": {"code": "invalidApiKey", "message": "Invalid API key"},
            "taskUUID": a, "taskType": "authentication"
        }))
        .unwrap();
        let errs = legacy.all_errors();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].task_uuid.unwrap().to_string(), a);
        assert_eq!(errs[0].task_type.as_deref(), Some("authentication"));
    }

    #[test]
    fn envelope_tolerates_null_and_empty_keys_and_omits_empty_lists() {
        let env: Envelope =
            serde_json::from_value(json!({"data": null, "errors": [], "extra": true})).unwrap();
        assert!(env.all_errors().is_empty());
        assert_eq!(serde_json::to_value(&env).unwrap(), json!({}));
        let ack = Envelope::with_data(vec![TaskItem::ack("videoInference", Uuid::nil())]);
        assert_eq!(
            serde_json::to_value(&ack).unwrap(),
            json!({"data": [{"taskType": "videoInference",
                              "taskUUID": "00000000-0000-0000-0000-000000000000"}]})
        );
    }
}
