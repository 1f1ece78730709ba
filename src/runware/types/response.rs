//! What Runware answers: the envelope, its task items and error objects.

use super::lenient::{lenient, lenient_number, lenient_text, list_or_one};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

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
