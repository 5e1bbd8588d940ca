//! Field validation in Discord's vocabulary: leaf codes and messages for `errors`, plus the
//! serde helpers request types share (nullable fields, lenient query booleans).

use std::fmt::Display;

use concord_core::id::Id;
use serde::{Deserialize, Deserializer};

use crate::error::FormErrors;

/// Leaf codes used in `errors` trees.
pub(crate) mod code {
    pub(crate) const REQUIRED: &str = "BASE_TYPE_REQUIRED";
    pub(crate) const MAX_LENGTH: &str = "BASE_TYPE_MAX_LENGTH";
    pub(crate) const MIN_LENGTH: &str = "BASE_TYPE_MIN_LENGTH";
    pub(crate) const BAD_LENGTH: &str = "BASE_TYPE_BAD_LENGTH";
    pub(crate) const CHOICES: &str = "BASE_TYPE_CHOICES";
    pub(crate) const NUMBER_COERCE: &str = "NUMBER_TYPE_COERCE";
    pub(crate) const NUMBER_MAX: &str = "NUMBER_TYPE_MAX";
    pub(crate) const NUMBER_MIN: &str = "NUMBER_TYPE_MIN";
    pub(crate) const BOOLEAN: &str = "BASE_TYPE_BOOLEAN";
    pub(crate) const STRING: &str = "BASE_TYPE_STRING";
    pub(crate) const INVALID: &str = "BASE_TYPE_INVALID";
    pub(crate) const CONTENT_TYPE: &str = "CONTENT_TYPE_INVALID";
    pub(crate) const USERNAME_TAKEN: &str = "USERNAME_ALREADY_TAKEN";
    pub(crate) const EMAIL_TAKEN: &str = "EMAIL_ALREADY_REGISTERED";
    pub(crate) const USERNAME_INVALID: &str = "USERNAME_INVALID_CONTAINS";
    pub(crate) const INVALID_LOGIN: &str = "INVALID_LOGIN";
    pub(crate) const IMAGE_INVALID: &str = "IMAGE_INVALID";
    pub(crate) const CHANNEL_PARENT_INVALID: &str = "CHANNEL_PARENT_INVALID_TYPE";
    pub(crate) const CHANNEL_INVALID: &str = "CHANNEL_INVALID";
    pub(crate) const UNKNOWN_MESSAGE_REFERENCE: &str = "MESSAGE_REFERENCE_UNKNOWN_MESSAGE";
    pub(crate) const MUTUALLY_EXCLUSIVE: &str = "MESSAGE_LIST_ARGS_MUTUALLY_EXCLUSIVE";
}

/// Message of a `BASE_TYPE_REQUIRED` leaf.
pub(crate) const REQUIRED_MESSAGE: &str = "This field is required";

/// Checks that `value` has between `min` and `max` characters (inclusive).
pub(crate) fn length(errors: &mut FormErrors, path: &[&str], value: &str, min: usize, max: usize) {
    let len = value.chars().count();
    if len >= min && len <= max {
        return;
    }
    if min == 0 {
        errors.add(
            path,
            code::MAX_LENGTH,
            format!("Must be {max} or fewer in length."),
        );
    } else if max == usize::MAX {
        errors.add(
            path,
            code::MIN_LENGTH,
            format!("Must be {min} or more in length."),
        );
    } else {
        errors.add(
            path,
            code::BAD_LENGTH,
            format!("Must be between {min} and {max} in length."),
        );
    }
}

/// Checks that `value` lies in `min..=max`.
pub(crate) fn range<T: PartialOrd + Display>(
    errors: &mut FormErrors,
    path: &[&str],
    value: T,
    min: T,
    max: T,
) {
    if value < min {
        errors.add(
            path,
            code::NUMBER_MIN,
            format!("int value should be greater than or equal to {min}."),
        );
    } else if value > max {
        errors.add(
            path,
            code::NUMBER_MAX,
            format!("int value should be less than or equal to {max}."),
        );
    }
}

/// Checks that `value` is one of `choices`.
pub(crate) fn choice<T: PartialEq + Display>(
    errors: &mut FormErrors,
    path: &[&str],
    value: T,
    choices: &[T],
) {
    if !choices.contains(&value) {
        let list = choices
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        errors.add(
            path,
            code::CHOICES,
            format!("Value must be one of ({list})."),
        );
    }
}

/// Discord's username normalisation: surrounding whitespace trimmed, inner runs collapsed.
pub(crate) fn normalize_name(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Discord's username rules (2–32 characters; no `@`, `#`, `:`, triple backtick or
/// "discord"; not `everyone`/`here`), checked on an already normalised name.
pub(crate) fn username(errors: &mut FormErrors, path: &[&str], name: &str) {
    let len = name.chars().count();
    if !(2..=32).contains(&len) {
        errors.add(
            path,
            code::BAD_LENGTH,
            "Must be between 2 and 32 in length.",
        );
        return;
    }
    let lower = name.to_lowercase();
    for forbidden in ["@", "#", ":", "```", "discord"] {
        if lower.contains(forbidden) {
            errors.add(
                path,
                code::USERNAME_INVALID,
                format!("Username cannot contain \"{forbidden}\""),
            );
            return;
        }
    }
    if lower == "everyone" || lower == "here" {
        errors.add(
            path,
            code::USERNAME_INVALID,
            format!("Username cannot be \"{lower}\""),
        );
    }
}

/// Deserializes a field that distinguishes "absent" (`None`) from `null` (`Some(None)`);
/// use with `#[serde(default, deserialize_with = "nullable")]`.
pub(crate) fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A query-string boolean: `true`/`True`/`1` and `false`/`False`/`0`, like Discord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct QueryBool(pub(crate) bool);

impl<'de> Deserialize<'de> for QueryBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "true" | "True" | "1" => Ok(Self(true)),
            "false" | "False" | "0" => Ok(Self(false)),
            _ => Err(serde::de::Error::custom("expected a boolean")),
        }
    }
}

/// A snowflake bound in a query string (`before`, `after`, `around`). Besides ids it takes `0`,
/// Discord's documented default for `after`, which discord.py sends to start from the oldest
/// entry. The store's bounds are exclusive and every generated snowflake carries a timestamp
/// far above 1, so `0` becomes the smallest id, 1, with the same meaning: "before 0" is empty,
/// "after 0" is everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryId<M>(pub(crate) Id<M>);

impl<'de, M> Deserialize<'de> for QueryId<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.parse::<u64>() {
            Ok(0) => Ok(Self(Id::new(1))),
            // Ids are stored as signed 64-bit integers; a larger bound means the same as the
            // largest storable id instead of wrapping negative.
            Ok(raw) => Ok(Self(Id::new(raw.min(i64::MAX as u64)))),
            Err(_) => Err(serde::de::Error::custom("not a snowflake id")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_clamp_to_storable_range() {
        let parse =
            |v: &str| serde_json::from_value::<QueryId<concord_core::id::UserMarker>>(v.into());
        assert_eq!(parse("0").unwrap().0.get(), 1);
        assert_eq!(
            parse("18446744073709551615").unwrap().0.get(),
            i64::MAX as u64
        );
        assert_eq!(parse("42").unwrap().0.get(), 42);
        assert!(parse("abc").is_err());
        assert!(parse("-1").is_err());
    }

    #[test]
    fn username_rules() {
        let check = |name: &str| {
            let mut errors = FormErrors::new();
            username(&mut errors, &["username"], &normalize_name(name));
            errors.is_empty()
        };
        assert!(check("alice"));
        assert!(check("  al   ice "));
        assert!(!check("a"));
        assert!(!check(&"x".repeat(33)));
        assert!(!check("my discord bot"));
        assert!(!check("a@b"));
        assert!(!check("Everyone"));
        assert_eq!(normalize_name("  a \t b  "), "a b");
    }

    #[test]
    fn length_codes() {
        let mut errors = FormErrors::new();
        length(&mut errors, &["a"], "abc", 0, 2);
        length(&mut errors, &["b"], "abc", 8, usize::MAX);
        length(&mut errors, &["c"], "abc", 4, 10);
        let map = errors.as_map();
        assert_eq!(map["a"]["_errors"][0]["code"], code::MAX_LENGTH);
        assert_eq!(map["b"]["_errors"][0]["code"], code::MIN_LENGTH);
        assert_eq!(map["c"]["_errors"][0]["code"], code::BAD_LENGTH);
    }
}
