//! Shape conformance: every REST response of the implemented routes validates against the schema
//! of its path, method and status in Discord's own OpenAPI document (tests/spec, MIT licensed).
//!
//! Routes Discord's document lacks are listed in [`EXCEPTIONS`] and checked by the REST tests instead.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::common::{Db, Response, TestServer};

/// Implemented routes that Discord's OpenAPI document does not describe.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("POST", "/auth/register", "Concord account registration"),
    ("POST", "/auth/login", "Concord password login"),
    ("POST", "/auth/logout", "Concord token revocation"),
    (
        "POST",
        "/applications",
        "application creation happens in Discord's web UI",
    ),
    (
        "POST",
        "/applications/{application_id}/bot/reset",
        "token reset happens in Discord's web UI",
    ),
    (
        "POST",
        "/guilds",
        "removed from Discord's documentation in 2025",
    ),
    (
        "DELETE",
        "/guilds/{guild_id}",
        "removed from Discord's documentation in 2025",
    ),
    (
        "POST",
        "/invites/{code}",
        "user-only accept-invite route, undocumented",
    ),
];

/// Where Discord's documentation and its OpenAPI document disagree, the documentation wins (the
/// document's maintainers say so); each such point is handled explicitly in [`Spec::check`].
///
/// Field errors: the documentation gives leaf codes as strings (`"BASE_TYPE_REQUIRED"`), while the
/// document's `Error` schema types every `code` as an integer. The `errors` tree is therefore
/// checked against the documented shape, and the rest of the body against the schema.
const FIELD_ERROR_CODES_ARE_STRINGS: &str = "errors.*._errors[].code";

struct Spec {
    doc: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
    failures: Mutex<Vec<String>>,
}

impl Spec {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/spec/discord-openapi.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        Self {
            doc,
            validators: Mutex::new(HashMap::new()),
            failures: Mutex::new(Vec::new()),
        }
    }

    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            v = self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {r}"));
        }
        v
    }

    /// Asserts that `resp` matches the documented response for the route.
    #[track_caller]
    fn check(&self, method: &str, template: &str, resp: &Response) {
        assert!(
            !EXCEPTIONS
                .iter()
                .any(|(m, p, _)| *m == method && *p == template),
            "{method} {template} is an exception"
        );
        let op = self
            .doc
            .pointer(&format!(
                "/paths/{}/{}",
                template.replace('~', "~0").replace('/', "~1"),
                method.to_lowercase()
            ))
            .unwrap_or_else(|| panic!("{method} {template} is not in Discord's OpenAPI document"));
        let status = resp.status.to_string();
        let class = format!("{}XX", &status[..1]);
        let documented = op["responses"]
            .get(&status)
            .or_else(|| op["responses"].get(&class))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {template}: status {status} is not documented (body {})",
                    resp.body
                )
            });
        let documented = self.resolve(documented);
        let Some(schema) = documented.pointer("/content/application~1json/schema") else {
            assert!(
                resp.body.is_null(),
                "{method} {template} {status}: documented without a body, got {}",
                resp.body
            );
            return;
        };
        assert_eq!(
            resp.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {template}: JSON responses are exactly application/json"
        );
        let key = format!("{method} {template} {status}");
        let mut body = resp.body.clone();
        if let Some(errors) = body.as_object_mut().and_then(|b| b.remove("errors")) {
            if let Err(problem) = check_field_errors(&errors) {
                let report = format!("{key}: `errors` breaks the documented shape ({FIELD_ERROR_CODES_ARE_STRINGS}): {problem}");
                self.failures.lock().unwrap().push(report);
            }
        }
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            cache
                .entry(key.clone())
                .or_insert_with(|| {
                    let mut root = self.doc.clone();
                    root["x-concord-check"] = schema.clone();
                    root["$ref"] = json!("#/x-concord-check");
                    std::sync::Arc::new(
                        jsonschema::draft202012::new(&root).expect("schema compiles"),
                    )
                })
                .clone()
        };
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .take(10)
            .collect();
        if !errors.is_empty() {
            let report = format!(
                "{key} does not match Discord's schema:\n{}\nbody: {}",
                errors.join("\n"),
                resp.body
            );
            self.failures.lock().unwrap().push(report);
        }
    }

    /// Fails with every mismatch seen, so one run shows them all.
    #[track_caller]
    fn assert_all_matched(&self) {
        let failures = self.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "{} responses do not match:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// Discord's documented field-error tree: nested objects keyed by field name or index, with
/// `_errors: [{code: string, message: string}]` leaves.
fn check_field_errors(tree: &Value) -> Result<(), String> {
    let object = tree
        .as_object()
        .ok_or_else(|| format!("not an object: {tree}"))?;
    if object.is_empty() {
        return Err("empty error tree".to_owned());
    }
    for (key, value) in object {
        if key == "_errors" {
            let leaves = value.as_array().ok_or("`_errors` is not an array")?;
            if leaves.is_empty()
                || !leaves
                    .iter()
                    .all(|l| l["code"].is_string() && l["message"].is_string())
            {
                return Err(format!("bad leaves {value}"));
            }
        } else {
            check_field_errors(value)?;
        }
    }
    Ok(())
}

#[test]
fn field_error_checker_rejects_bad_trees() {
    assert!(check_field_errors(
        &json!({"content": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "x"}]}})
    )
    .is_ok());
    assert!(
        check_field_errors(&json!({"content": {"_errors": [{"code": 5, "message": "x"}]}}))
            .is_err()
    );
    assert!(check_field_errors(&json!({"content": {}})).is_err());
    assert!(check_field_errors(&json!({"content": {"_errors": []}})).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_matches_discords_schema() {
    let spec = Spec::load();
    let s = TestServer::start(Db::Sqlite).await;
    let (owner, owner_id) = s.user("shape").await;
    let (other, other_id) = s.user("other").await;
    let (bot, bot_id) = s.bot(&owner, "shapebot").await;

    let r = s.call("GET", "/users/@me", Some(&owner), None).await;
    spec.check("GET", "/users/@me", &r);
    let r = s
        .call(
            "PATCH",
            "/users/@me",
            Some(&owner),
            Some(json!({"global_name": "Shape Tester"})),
        )
        .await;
    spec.check("PATCH", "/users/@me", &r);
    let r = s
        .call("GET", &format!("/users/{other_id}"), Some(&owner), None)
        .await;
    spec.check("GET", "/users/{user_id}", &r);
    let r = s
        .call("GET", "/oauth2/applications/@me", Some(&bot), None)
        .await;
    spec.check("GET", "/oauth2/applications/@me", &r);
    let r = s.call("GET", "/applications/@me", Some(&bot), None).await;
    spec.check("GET", "/applications/@me", &r);
    let r = s.call("GET", "/gateway", None, None).await;
    spec.check("GET", "/gateway", &r);
    let r = s.call("GET", "/gateway/bot", Some(&bot), None).await;
    spec.check("GET", "/gateway/bot", &r);

    let (guild, general) = s.guild(&owner).await;
    let r = s
        .call("GET", &format!("/guilds/{guild}"), Some(&owner), None)
        .await;
    spec.check("GET", "/guilds/{guild_id}", &r);
    let r = s
        .call(
            "GET",
            &format!("/guilds/{guild}?with_counts=true"),
            Some(&owner),
            None,
        )
        .await;
    spec.check("GET", "/guilds/{guild_id}", &r);
    let r = s
        .call(
            "PATCH",
            &format!("/guilds/{guild}"),
            Some(&owner),
            Some(json!({"name": "renamed"})),
        )
        .await;
    spec.check("PATCH", "/guilds/{guild_id}", &r);
    let r = s.call("GET", "/users/@me/guilds", Some(&owner), None).await;
    spec.check("GET", "/users/@me/guilds", &r);
    let r = s
        .call(
            "GET",
            &format!("/guilds/{guild}/channels"),
            Some(&owner),
            None,
        )
        .await;
    spec.check("GET", "/guilds/{guild_id}/channels", &r);
    let r = s
        .call(
            "POST",
            &format!("/guilds/{guild}/channels"),
            Some(&owner),
            Some(json!({"name": "shapes", "topic": "t"})),
        )
        .await;
    spec.check("POST", "/guilds/{guild_id}/channels", &r);
    let extra = r.body["id"].as_str().unwrap().to_owned();
    let r = s
        .call("GET", &format!("/channels/{general}"), Some(&owner), None)
        .await;
    spec.check("GET", "/channels/{channel_id}", &r);
    let r = s
        .call(
            "PATCH",
            &format!("/channels/{extra}"),
            Some(&owner),
            Some(json!({"topic": "new"})),
        )
        .await;
    spec.check("PATCH", "/channels/{channel_id}", &r);

    let r = s
        .call(
            "POST",
            &format!("/channels/{general}/invites"),
            Some(&owner),
            Some(json!({})),
        )
        .await;
    spec.check("POST", "/channels/{channel_id}/invites", &r);
    let code = r.body["code"].as_str().unwrap().to_owned();
    let r = s.call("GET", &format!("/invites/{code}"), None, None).await;
    spec.check("GET", "/invites/{code}", &r);
    let r = s
        .call(
            "GET",
            &format!("/invites/{code}?with_counts=true"),
            Some(&other),
            None,
        )
        .await;
    spec.check("GET", "/invites/{code}", &r);
    TestServer::expect(
        s.call("POST", &format!("/invites/{code}"), Some(&other), None)
            .await,
        200,
    );
    TestServer::expect(
        s.call("POST", &format!("/invites/{code}"), Some(&bot), None)
            .await,
        200,
    );
    let r = s
        .call(
            "GET",
            &format!("/guilds/{guild}/members?limit=10"),
            Some(&bot),
            None,
        )
        .await;
    spec.check("GET", "/guilds/{guild_id}/members", &r);
    let r = s
        .call(
            "GET",
            &format!("/guilds/{guild}/members/{owner_id}"),
            Some(&other),
            None,
        )
        .await;
    spec.check("GET", "/guilds/{guild_id}/members/{user_id}", &r);

    let msgs = format!("/channels/{general}/messages");
    let r = s
        .call(
            "POST",
            &msgs,
            Some(&owner),
            Some(json!({"content": format!("hi <@{other_id}>"), "nonce": "n1"})),
        )
        .await;
    spec.check("POST", "/channels/{channel_id}/messages", &r);
    let first = r.body["id"].as_str().unwrap().to_owned();
    let reply = json!({"content": "reply", "message_reference": {"message_id": first}});
    let r = s.call("POST", &msgs, Some(&bot), Some(reply)).await;
    spec.check("POST", "/channels/{channel_id}/messages", &r);
    let one = format!("{msgs}/{first}");
    let r = s
        .call(
            "PATCH",
            &one,
            Some(&owner),
            Some(json!({"content": "edited"})),
        )
        .await;
    spec.check("PATCH", "/channels/{channel_id}/messages/{message_id}", &r);
    let react = format!("{one}/reactions/%F0%9F%94%A5");
    let r = s
        .call("PUT", &format!("{react}/@me"), Some(&other), None)
        .await;
    spec.check(
        "PUT",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
        &r,
    );
    TestServer::expect(
        s.call("PUT", &format!("{react}/@me"), Some(&owner), None)
            .await,
        204,
    );
    let r = s.call("GET", &one, Some(&other), None).await;
    spec.check("GET", "/channels/{channel_id}/messages/{message_id}", &r);
    let r = s
        .call("GET", &format!("{msgs}?limit=10"), Some(&other), None)
        .await;
    spec.check("GET", "/channels/{channel_id}/messages", &r);
    let r = s.call("GET", &react, Some(&other), None).await;
    spec.check(
        "GET",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}",
        &r,
    );
    let r = s
        .call("DELETE", &format!("{react}/{other_id}"), Some(&owner), None)
        .await;
    spec.check(
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/{user_id}",
        &r,
    );
    let r = s
        .call("DELETE", &format!("{react}/@me"), Some(&owner), None)
        .await;
    spec.check(
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
        &r,
    );
    let r = s
        .call(
            "POST",
            &format!("/channels/{general}/typing"),
            Some(&other),
            None,
        )
        .await;
    spec.check("POST", "/channels/{channel_id}/typing", &r);
    let r = s.call("DELETE", &one, Some(&owner), None).await;
    spec.check("DELETE", "/channels/{channel_id}/messages/{message_id}", &r);

    // Documented error responses.
    let r = s.call("GET", "/channels/1234", Some(&owner), None).await;
    assert_eq!(r.status, 404);
    spec.check("GET", "/channels/{channel_id}", &r);
    let r = s
        .call("GET", "/users/@me", Some("Bot not.a.token"), None)
        .await;
    assert_eq!(r.status, 401);
    spec.check("GET", "/users/@me", &r);
    let r = s
        .call(
            "POST",
            &msgs,
            Some(&owner),
            Some(json!({"content": "x".repeat(2001)})),
        )
        .await;
    assert_eq!(r.status, 400);
    spec.check("POST", "/channels/{channel_id}/messages", &r);
    let r = s
        .call(
            "PATCH",
            &format!("/guilds/{guild}"),
            Some(&other),
            Some(json!({"name": "nope"})),
        )
        .await;
    assert_eq!(r.status, 403);
    spec.check("PATCH", "/guilds/{guild_id}", &r);

    let r = s
        .call("DELETE", &format!("/channels/{extra}"), Some(&owner), None)
        .await;
    spec.check("DELETE", "/channels/{channel_id}", &r);
    let r = s
        .call(
            "DELETE",
            &format!("/users/@me/guilds/{guild}"),
            Some(&other),
            None,
        )
        .await;
    spec.check("DELETE", "/users/@me/guilds/{guild_id}", &r);
    let _ = bot_id;
    spec.assert_all_matched();
}
