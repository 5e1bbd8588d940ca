//! Discord's error body, `{"code", "message", "errors"}`: the field paths of its nested
//! `errors` object, so that a refused request says which field was wrong.
//!
//! See [Discord Docs/Reference](https://discord.com/developers/docs/reference#error-messages).

use serde_json::Value;

/// Every `path: CODE` in an `errors` object, e.g. `username: BASE_TYPE_REQUIRED` or
/// `embeds[0].title: BASE_TYPE_MAX_LENGTH`.
pub(crate) fn field_errors(errors: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(errors, &mut String::new(), &mut found);
    found
}

fn walk(node: &Value, path: &mut String, found: &mut Vec<String>) {
    let Value::Object(map) = node else {
        return;
    };
    for (key, child) in map {
        if key == "_errors" {
            for error in child.as_array().into_iter().flatten() {
                let code = error.get("code").and_then(Value::as_str);
                let message = error.get("message").and_then(Value::as_str);
                found.push(if path.is_empty() {
                    // An error on the whole body: only its message says what is wrong (e.g.
                    // "must have required property 'consent'"), its code alone ("required")
                    // does not.
                    message.or(code).unwrap_or("invalid").to_owned()
                } else {
                    // The code is the stable part; the message is for when a server has none.
                    format!("{path}: {}", code.or(message).unwrap_or("invalid"))
                });
            }
            continue;
        }
        let before = path.len();
        if key.is_empty() {
            // Some servers (JSON-schema validators) file whole-body errors under "".
        } else if key.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{key}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        }
        walk(child, path, found);
        path.truncate(before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_field_path() {
        // Shape from Discord's documentation of error messages.
        let body: Value = serde_json::from_str(
            r#"{"code": 50035, "message": "Invalid Form Body", "errors": {
                "username": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]},
                "embeds": {"0": {"title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Too long"}]}}},
                "_errors": [{"message": "Something at the top"}]
            }}"#,
        )
        .unwrap();
        let mut found = field_errors(&body["errors"]);
        found.sort();
        assert_eq!(
            found,
            [
                "Something at the top",
                "embeds[0].title: BASE_TYPE_MAX_LENGTH",
                "username: BASE_TYPE_REQUIRED",
            ]
        );
        assert!(field_errors(&Value::Null).is_empty());
    }

    #[test]
    fn whole_body_errors_give_their_message() {
        // A JSON-schema validator's answer to a body lacking a required property: the error
        // sits under the empty key, and its code alone does not say which property.
        let body: Value = serde_json::from_str(
            r#"{"code": 50035, "message": "Invalid Form Body", "errors": {
                "": {"_errors": [{"message": "must have required property 'consent'", "code": "required"}]},
                "date_of_birth": {"_errors": [{"message": "This field is required", "code": "BASE_TYPE_REQUIRED"}]}
            }}"#,
        )
        .unwrap();
        let mut found = field_errors(&body["errors"]);
        found.sort();
        assert_eq!(
            found,
            [
                "date_of_birth: BASE_TYPE_REQUIRED",
                "must have required property 'consent'",
            ]
        );
    }
}
