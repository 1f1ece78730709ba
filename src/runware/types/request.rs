//! What reelay sends: the `videoInference` task, the user's generation
//! request it is built from, and the `getResponse` poll.

use super::*;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerationRequest {
    /// Defaults to the configured model; if given it must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "klingai:kling-video@3-omni-4k")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 2, max_length = 2500)]
    pub positive_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 3, maximum = 15)]
    pub duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4)]
    pub number_results: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^URL$")]
    pub output_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 20, maximum = 99)]
    pub output_quality: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^async$")]
    pub delivery_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60)]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_settings: Option<ProviderSettings>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Safety {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_content: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SafetyMode>,
}

/// none = no check, fast = key frames, full = every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SafetyMode {
    None,
    Fast,
    Full,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 2)]
    pub frame_images: Option<Vec<FrameImage>>,
    /// Source video for prompt-based editing; the output takes its size and length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_videos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 3)]
    pub elements: Option<Vec<Element>>,
}

/// A frame image: a bare image reference, or one pinned to a frame.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum FrameImage {
    Plain(String),
    Positioned(PositionedFrameImage),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Element {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontal_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 3)]
    pub images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub videos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voices: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub klingai: Option<KlingSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KlingSettings {
    /// Native audio generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<bool>,
    /// Multi-shot segments; their durations must add up to `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 6)]
    pub multi_prompt: Option<Vec<PromptSegment>>,
    /// Keep the reference video's sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_original_sound: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptSegment {
    pub prompt: String,
    pub duration: u32,
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
