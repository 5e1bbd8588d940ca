//! Extractors whose rejections speak Discord's error contract: the token check ([`AuthUser`],
//! [`MaybeAuthUser`]) and JSON body, path and query wrappers ([`AppJson`], [`AppPath`], [`AppQuery`]).

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use bytes::Bytes;
use concord_core::error_code;
use concord_core::id::UserId;
use concord_core::token;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::error::{Error, FormErrors, Result};
use crate::state::AppState;
use crate::validate::{code, REQUIRED_MESSAGE};

/// The caller, authenticated by a live token in `Authorization` (`Bot`, `Bearer` or bare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// User the token acts for.
    pub user_id: UserId,
    /// Id of the token used, for logout.
    pub token_id: u64,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(error_code::UNAUTHORIZED.into());
        };
        authenticate(header, state).await
    }
}

/// The caller when an `Authorization` header is present (it must then be valid), else nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        match parts.headers.get(AUTHORIZATION) {
            None => Ok(Self(None)),
            Some(header) => authenticate(header, state)
                .await
                .map(|user| Self(Some(user))),
        }
    }
}

async fn authenticate(header: &http::HeaderValue, state: &AppState) -> Result<AuthUser> {
    let raw = header
        .to_str()
        .map_err(|_| Error::from(error_code::UNAUTHORIZED))?;
    let claims = state
        .tokens
        .verify(token::strip_scheme(raw))
        .map_err(|_| Error::from(error_code::UNAUTHORIZED))?;
    if !state
        .live_tokens
        .is_live(&*state.store, claims.token_id, claims.user_id)
        .await?
    {
        return Err(error_code::UNAUTHORIZED.into());
    }
    Ok(AuthUser {
        user_id: claims.user_id,
        token_id: claims.token_id,
    })
}

/// A JSON request body. Rejections: wrong or missing `Content-Type` → 50035, unparsable JSON →
/// 50109, well-formed JSON of the wrong shape → 50035 with the offending field in `errors`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        if !is_json(req.headers()) {
            let mut errors = FormErrors::new();
            errors.add(
                &[],
                code::CONTENT_TYPE,
                "Expected \"Content-Type\" header to be one of {'application/json'}.",
            );
            return Err(errors.into());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| Error::from(error_code::REQUEST_TOO_LARGE))?;
        parse_json(&bytes).map(Self)
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Decodes a JSON body, tracking the path of the first shape error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => {
            de.end()
                .map_err(|_| Error::from(error_code::INVALID_JSON))?;
            Ok(value)
        }
        Err(err) => {
            let inner = err.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(error_code::INVALID_JSON.into());
            }
            let message = strip_position(&inner.to_string());
            Err(shape_error(err.path(), &message, Source::Body))
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Body,
    Query,
    Path,
}

/// serde_json appends " at line L column C" to data errors; Discord's messages carry no position.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Turns a serde data error at `path` into a 50035 leaf with the closest Discord code.
fn shape_error(path: &serde_path_to_error::Path, message: &str, source: Source) -> Error {
    let mut segments: Vec<String> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    let (code, text) = if let Some(field) = missing_field(message) {
        segments.push(field.to_owned());
        (code::REQUIRED, REQUIRED_MESSAGE.to_owned())
    } else if message.starts_with("invalid type: null") {
        (code::REQUIRED, REQUIRED_MESSAGE.to_owned())
    } else if message.contains("snowflake") {
        (code::NUMBER_COERCE, "Value is not snowflake.".to_owned())
    } else if message.contains("boolean") || message.ends_with("a bool") {
        (code::BOOLEAN, "Must be either true or false.".to_owned())
    } else if message.contains("unknown variant") {
        (code::CHOICES, "Value is not a valid choice.".to_owned())
    } else if message.contains("expected a string") {
        (
            code::STRING,
            "Could not interpret value as string.".to_owned(),
        )
    } else if source == Source::Query || expects_number(message) {
        (code::NUMBER_COERCE, "Value is not int.".to_owned())
    } else {
        (code::INVALID, "Invalid value.".to_owned())
    };
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    Error::field(&path, code, text)
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn expects_number(message: &str) -> bool {
    let Some((_, expected)) = message.rsplit_once("expected ") else {
        return false;
    };
    [
        "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "integer", "number",
    ]
    .iter()
    .any(|t| expected.contains(t))
}

/// Path parameters. A malformed snowflake answers like Discord: 400 / 50035 with
/// `NUMBER_TYPE_COERCE` on the parameter.
#[derive(Debug, Clone, Copy)]
pub struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for AppPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                Error::field(&[], code::INVALID, "Path parameters must be valid UTF-8.")
            })?;
        let map: serde_json::Map<String, serde_json::Value> = raw
            .iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect();
        serde_path_to_error::deserialize(serde_json::Value::Object(map))
            .map(Self)
            .map_err(|err| {
                let key = err.path().iter().find_map(|s| match s {
                    Segment::Map { key } => Some(key.clone()),
                    _ => None,
                });
                match key {
                    Some(key) => {
                        let shown = raw
                            .iter()
                            .find(|(k, _)| *k == key)
                            .map(|(_, v)| v)
                            .unwrap_or_default();
                        Error::field(
                            &[&key],
                            code::NUMBER_COERCE,
                            format!("Value \"{shown}\" is not snowflake."),
                        )
                    }
                    None => shape_error(err.path(), &err.inner().to_string(), Source::Path),
                }
            })
    }
}

/// Query parameters with Discord's rejections (50035 naming the parameter).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Self)
            .map_err(|err| shape_error(err.path(), &err.inner().to_string(), Source::Query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::ChannelId;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        limit: Option<u32>,
        parent_id: Option<ChannelId>,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        id: ChannelId,
    }

    fn errors_of(raw: &str) -> serde_json::Value {
        match parse_json::<Body>(raw.as_bytes()) {
            Err(Error::Form(f)) => serde_json::Value::Object(f.as_map().clone()),
            Err(Error::Code(row)) => serde_json::json!({ "row": row.code }),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn body_errors_follow_the_request_shape() {
        assert_eq!(
            errors_of("{}")["name"]["_errors"][0]["code"],
            code::REQUIRED
        );
        assert_eq!(
            errors_of(r#"{"name":null}"#)["name"]["_errors"][0]["code"],
            code::REQUIRED
        );
        assert_eq!(
            errors_of(r#"{"name":"a","limit":"x"}"#)["limit"]["_errors"][0]["code"],
            code::NUMBER_COERCE
        );
        assert_eq!(
            errors_of(r#"{"name":"a","parent_id":"abc"}"#)["parent_id"]["_errors"][0]["code"],
            code::NUMBER_COERCE
        );
        let nested = errors_of(r#"{"name":"a","nested":{"items":[{"id":"1"},{"id":"x"}]}}"#);
        assert_eq!(
            nested["nested"]["items"]["1"]["id"]["_errors"][0]["code"],
            code::NUMBER_COERCE
        );
        let missing = errors_of(r#"{"name":"a","nested":{"items":[{}]}}"#);
        assert_eq!(
            missing["nested"]["items"]["0"]["id"]["_errors"][0]["code"],
            code::REQUIRED
        );
        assert_eq!(
            errors_of("{\"name\": ")["row"],
            error_code::INVALID_JSON.code
        );
        assert_eq!(errors_of("")["row"], error_code::INVALID_JSON.code);
        assert_eq!(
            errors_of(r#"{"name":"a"} x"#)["row"],
            error_code::INVALID_JSON.code
        );
    }
}
