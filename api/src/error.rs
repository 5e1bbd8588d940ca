//! The crate's one error type and the one place it becomes an HTTP response.

use axum::response::{IntoResponse, Response};
use axum::Json;
use concord_core::error_code::{self, ErrorCode};
use concord_core::repo::RepoError;
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

/// Result alias for handlers and helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row of the Discord error table: status, code and message come from the row.
    #[error("{}", .0.message)]
    Code(ErrorCode),
    /// 400 / 50035 with per-field errors mirroring the request shape.
    #[error("invalid form body")]
    Form(FormErrors),
    /// 429: the caller exceeded a route bucket or the global limit.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the caller may retry.
        retry_after: f64,
        /// Whether the global (per caller) limit was hit.
        global: bool,
    },
    /// Storage failure.
    #[error("storage failure")]
    Repo(#[from] RepoError),
    /// Password hashing or verification failed for a reason other than a wrong password.
    #[error("password hashing failed")]
    PasswordHash(#[source] argon2::password_hash::Error),
    /// The password hashing threads are gone (a hashing job panicked, or shutdown).
    #[error("password hashing unavailable")]
    HashingStopped,
    /// The cluster (event bus or topology) cannot be reached: the write was not made.
    #[error("cluster unavailable: {0}")]
    Cluster(String),
    /// Invalid configuration, reported by [`crate::AppState::new`].
    #[error("invalid argon2 parameters")]
    Config(#[source] argon2::Error),
}

impl From<ErrorCode> for Error {
    fn from(row: ErrorCode) -> Self {
        Self::Code(row)
    }
}

impl From<FormErrors> for Error {
    fn from(errors: FormErrors) -> Self {
        Self::Form(errors)
    }
}

impl Error {
    /// 400 / 50035 with one error on the field at `path`.
    pub fn field(path: &[&str], code: &'static str, message: impl Into<String>) -> Self {
        let mut errors = FormErrors::new();
        errors.add(path, code, message);
        Self::Form(errors)
    }
}

/// Translates storage failures into API errors at the call site.
pub trait ResultExt<T> {
    /// Maps a violation of the unique constraint `name` to the error built by `f`.
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for Result<T, E> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match e.into() {
            Error::Repo(RepoError::Conflict(violated)) if violated == name => f(),
            other => other,
        })
    }
}

/// Discord's nested `errors` object: keys follow the request shape (array indices as strings),
/// leaves hold `_errors: [{code, message}]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormErrors(Map<String, Value>);

impl FormErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error for the field at `path`; an empty path is the whole request.
    pub fn add(&mut self, path: &[&str], code: &'static str, message: impl Into<String>) {
        let mut node = &mut self.0;
        for segment in path {
            let child = node
                .entry((*segment).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            node = match child {
                Value::Object(map) => map,
                _ => unreachable!("just made an object"),
            };
        }
        let leaf = node
            .entry("_errors")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = leaf {
            list.push(serde_json::json!({ "code": code, "message": message.into() }));
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else the 50035 error.
    pub fn finish(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Form(self))
        }
    }

    /// The `errors` object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a Map<String, Value>>,
}

#[derive(Serialize)]
struct RateLimitBody {
    message: &'static str,
    retry_after: f64,
    global: bool,
    code: u32,
}

fn row_response(row: ErrorCode, errors: Option<&Map<String, Value>>) -> Response {
    let status = StatusCode::from_u16(row.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(ErrorBody {
            message: row.message,
            code: row.code,
            errors,
        }),
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Self::Code(row) => row_response(row, None),
            Self::Form(errors) => {
                row_response(error_code::INVALID_FORM_BODY, Some(errors.as_map()))
            }
            Self::RateLimited {
                retry_after,
                global,
            } => {
                let body = RateLimitBody {
                    message: error_code::RATE_LIMITED.message,
                    retry_after,
                    global,
                    code: error_code::RATE_LIMITED.code,
                };
                (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
            }
            Self::Repo(ref source) => internal(&self, source),
            Self::PasswordHash(ref source) => internal(&self, source),
            Self::HashingStopped => internal(&self, &self),
            Self::Config(ref source) => internal(&self, source),
            Self::Cluster(ref why) => {
                tracing::error!(error = %why, "cluster unavailable");
                row_response(error_code::UNAVAILABLE, None)
            }
        }
    }
}

/// Logs inside the request span and answers with a body that reveals nothing of the cause.
fn internal(error: &Error, source: &dyn std::error::Error) -> Response {
    tracing::error!(error = %error, source = %source, "request failed");
    row_response(error_code::INTERNAL, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_errors_mirror_request_shape() {
        let mut errors = FormErrors::new();
        errors.add(
            &["permission_overwrites", "0", "id"],
            "NUMBER_TYPE_COERCE",
            "bad",
        );
        errors.add(&["name"], "BASE_TYPE_REQUIRED", "This field is required");
        errors.add(&["name"], "BASE_TYPE_MIN_LENGTH", "short");
        let value = Value::Object(errors.as_map().clone());
        assert_eq!(
            value["permission_overwrites"]["0"]["id"]["_errors"][0]["code"],
            "NUMBER_TYPE_COERCE"
        );
        assert_eq!(value["name"]["_errors"].as_array().map(Vec::len), Some(2));
    }
}
