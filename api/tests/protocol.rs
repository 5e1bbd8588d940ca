//! Router-wide behaviour: unknown routes, methods and versions, rate limits, metrics.

use std::sync::OnceLock;
use std::time::Duration;

use concord_api::RateLimitConfig;
use http::{Method, Request};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;

use crate::backend_tests;
use crate::common::{test_config, TestApp};

backend_tests!(
    unknown_route_method_and_version,
    both_versions_serve_the_same_handlers,
    every_route_but_the_public_ones_needs_a_token,
    unknown_ids_answer_with_their_codes,
    non_members_get_missing_access,
    body_routes_reject_bad_json_and_content_type,
);

/// Every authenticated route with a placeholder path; bodies are irrelevant to the token check.
const AUTHENTICATED: &[(&str, &str)] = &[
    ("POST", "/auth/logout"),
    ("POST", "/applications"),
    ("GET", "/applications/@me"),
    ("GET", "/oauth2/applications/@me"),
    ("POST", "/applications/1/bot/reset"),
    ("GET", "/users/@me"),
    ("PATCH", "/users/@me"),
    ("GET", "/users/1"),
    ("GET", "/users/@me/guilds"),
    ("DELETE", "/users/@me/guilds/1"),
    ("GET", "/gateway/bot"),
    ("POST", "/guilds"),
    ("GET", "/guilds/1"),
    ("PATCH", "/guilds/1"),
    ("DELETE", "/guilds/1"),
    ("GET", "/guilds/1/channels"),
    ("POST", "/guilds/1/channels"),
    ("GET", "/guilds/1/members"),
    ("GET", "/guilds/1/members/1"),
    ("GET", "/channels/1"),
    ("PATCH", "/channels/1"),
    ("DELETE", "/channels/1"),
    ("POST", "/channels/1/typing"),
    ("POST", "/channels/1/invites"),
    ("POST", "/invites/abc"),
    ("GET", "/channels/1/messages"),
    ("POST", "/channels/1/messages"),
    ("GET", "/channels/1/messages/1"),
    ("PATCH", "/channels/1/messages/1"),
    ("DELETE", "/channels/1/messages/1"),
    ("GET", "/channels/1/messages/1/reactions/xx:1"),
    ("PUT", "/channels/1/messages/1/reactions/xx:1/@me"),
    ("DELETE", "/channels/1/messages/1/reactions/xx:1/@me"),
    ("DELETE", "/channels/1/messages/1/reactions/xx:1/1"),
];

async fn every_route_but_the_public_ones_needs_a_token(app: TestApp) {
    for (method, path) in AUTHENTICATED {
        let method: Method = method.parse().unwrap();
        let response = app.send(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(response.status, 401, "{method} {path}");
        response.error(401, 0);
    }
    app.get("/gateway", None).await.ok(200);
    app.post(
        "/auth/login",
        None,
        json!({ "login": "x", "password": "y" }),
    )
    .await
    .error(400, 50035);
}

async fn unknown_ids_answer_with_their_codes(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Known").await;
    let c = guild.general;
    let g = guild.id;
    let cases: Vec<(&str, String, Option<serde_json::Value>, u16, u64)> = vec![
        ("GET", "/users/1".into(), None, 404, 10013),
        ("DELETE", "/users/@me/guilds/1".into(), None, 404, 10004),
        ("POST", "/applications/1/bot/reset".into(), None, 404, 10002),
        ("GET", "/guilds/1".into(), None, 404, 10004),
        (
            "PATCH",
            "/guilds/1".into(),
            Some(json!({ "name": "zz" })),
            404,
            10004,
        ),
        ("DELETE", "/guilds/1".into(), None, 404, 10004),
        ("GET", "/guilds/1/channels".into(), None, 404, 10004),
        (
            "POST",
            "/guilds/1/channels".into(),
            Some(json!({ "name": "zz" })),
            404,
            10004,
        ),
        ("GET", "/guilds/1/members".into(), None, 404, 10004),
        ("GET", format!("/guilds/{g}/members/1"), None, 404, 10007),
        ("GET", "/channels/1".into(), None, 404, 10003),
        (
            "PATCH",
            "/channels/1".into(),
            Some(json!({ "name": "zz" })),
            404,
            10003,
        ),
        ("DELETE", "/channels/1".into(), None, 404, 10003),
        ("POST", "/channels/1/typing".into(), None, 404, 10003),
        (
            "POST",
            "/channels/1/invites".into(),
            Some(json!({})),
            404,
            10003,
        ),
        ("GET", "/channels/1/messages".into(), None, 404, 10003),
        (
            "POST",
            "/channels/1/messages".into(),
            Some(json!({ "content": "hi" })),
            404,
            10003,
        ),
        ("GET", format!("/channels/{c}/messages/1"), None, 404, 10008),
        (
            "PATCH",
            format!("/channels/{c}/messages/1"),
            Some(json!({ "content": "hi" })),
            404,
            10008,
        ),
        (
            "DELETE",
            format!("/channels/{c}/messages/1"),
            None,
            404,
            10008,
        ),
        (
            "GET",
            format!("/channels/{c}/messages/1/reactions/xx:1"),
            None,
            404,
            10008,
        ),
        (
            "PUT",
            format!("/channels/{c}/messages/1/reactions/xx:1/@me"),
            None,
            404,
            10008,
        ),
        (
            "DELETE",
            format!("/channels/{c}/messages/1/reactions/xx:1/@me"),
            None,
            404,
            10008,
        ),
        (
            "DELETE",
            format!("/channels/{c}/messages/1/reactions/xx:1/1"),
            None,
            404,
            10008,
        ),
        ("GET", "/invites/zzzzzzzz".into(), None, 404, 10006),
        ("POST", "/invites/zzzzzzzz".into(), None, 404, 10006),
    ];
    for (method, path, body, status, code) in cases {
        let response = app
            .send(method.parse().unwrap(), &path, Some(&owner.token), body)
            .await;
        assert_eq!(response.status.as_u16(), status, "{method} {path}");
        response.error(status, code);
    }
}

async fn non_members_get_missing_access(app: TestApp) {
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Members Only").await;
    let message = app.message(&owner, guild.general, "hi").await;
    let (g, c, m) = (
        guild.id,
        guild.general,
        message["id"].as_str().unwrap().to_owned(),
    );
    let cases: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", format!("/guilds/{g}"), None),
        (
            "PATCH",
            format!("/guilds/{g}"),
            Some(json!({ "name": "mine" })),
        ),
        ("DELETE", format!("/guilds/{g}"), None),
        ("GET", format!("/guilds/{g}/channels"), None),
        (
            "POST",
            format!("/guilds/{g}/channels"),
            Some(json!({ "name": "mine" })),
        ),
        ("GET", format!("/guilds/{g}/members"), None),
        ("GET", format!("/guilds/{g}/members/{}", owner.id), None),
        ("GET", format!("/channels/{c}"), None),
        (
            "PATCH",
            format!("/channels/{c}"),
            Some(json!({ "name": "mine" })),
        ),
        ("DELETE", format!("/channels/{c}"), None),
        ("POST", format!("/channels/{c}/typing"), None),
        ("POST", format!("/channels/{c}/invites"), Some(json!({}))),
        ("GET", format!("/channels/{c}/messages"), None),
        (
            "POST",
            format!("/channels/{c}/messages"),
            Some(json!({ "content": "hi" })),
        ),
        ("GET", format!("/channels/{c}/messages/{m}"), None),
        (
            "PATCH",
            format!("/channels/{c}/messages/{m}"),
            Some(json!({ "content": "x" })),
        ),
        ("DELETE", format!("/channels/{c}/messages/{m}"), None),
        (
            "GET",
            format!("/channels/{c}/messages/{m}/reactions/xx:1"),
            None,
        ),
        (
            "PUT",
            format!("/channels/{c}/messages/{m}/reactions/xx:1/@me"),
            None,
        ),
        (
            "DELETE",
            format!("/channels/{c}/messages/{m}/reactions/xx:1/@me"),
            None,
        ),
        (
            "DELETE",
            format!("/channels/{c}/messages/{m}/reactions/xx:1/{}", owner.id),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let response = app
            .send(method.parse().unwrap(), &path, Some(&stranger.token), body)
            .await;
        assert_eq!(response.status.as_u16(), 403, "{method} {path}");
        response.error(403, 50001);
    }
}

async fn body_routes_reject_bad_json_and_content_type(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Bodies").await;
    let message = app.message(&owner, guild.general, "hi").await;
    let (g, c, m) = (
        guild.id,
        guild.general,
        message["id"].as_str().unwrap().to_owned(),
    );
    let routes: Vec<(&str, String)> = vec![
        ("POST", "/auth/register".into()),
        ("POST", "/auth/login".into()),
        ("POST", "/applications".into()),
        ("PATCH", "/users/@me".into()),
        ("POST", "/guilds".into()),
        ("PATCH", format!("/guilds/{g}")),
        ("POST", format!("/guilds/{g}/channels")),
        ("PATCH", format!("/channels/{c}")),
        ("POST", format!("/channels/{c}/invites")),
        ("POST", format!("/channels/{c}/messages")),
        ("PATCH", format!("/channels/{c}/messages/{m}")),
    ];
    let cases = [
        ("application/json", "{\"oops\"", 50109),
        ("text/plain", "{}", 50035),
        ("", "{}", 50035),
    ];
    for (method, path) in routes {
        for (content_type, body, code) in cases {
            let mut request = Request::builder()
                .method(method)
                .uri(format!("/api/v10{path}"))
                .header("authorization", format!("Bot {}", owner.token));
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            let response = app
                .call(request.body(axum::body::Body::from(body)).unwrap())
                .await;
            assert_eq!(
                response.status.as_u16(),
                400,
                "{method} {path} {content_type:?}"
            );
            response.error(400, code);
        }
        // Past the body limit: 413 / 40005 in Discord's shape, on every body route.
        let huge = format!("{{\"content\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/v10{path}"))
            .header("authorization", format!("Bot {}", owner.token))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(huge))
            .unwrap();
        app.call(request).await.error(413, 40005);
    }
}

async fn unknown_route_method_and_version(app: TestApp) {
    let user = app.user("proto").await;
    let not_found = app
        .get("/nothing/here", Some(&user.token))
        .await
        .error(404, 0);
    assert_eq!(not_found["message"], "404: Not Found");
    let request = Request::get("/elsewhere").body(Default::default()).unwrap();
    app.call(request).await.error(404, 0);
    let wrong_method = app
        .send(Method::PUT, "/users/@me", Some(&user.token), None)
        .await
        .error(405, 0);
    assert_eq!(wrong_method["message"], "405: Method Not Allowed");
    for version in ["v6", "v8", "v11"] {
        let request = Request::get(format!("/api/{version}/users/@me"))
            .header("authorization", format!("Bot {}", user.token))
            .body(Default::default())
            .unwrap();
        app.call(request).await.error(400, 50041);
    }
}

async fn both_versions_serve_the_same_handlers(app: TestApp) {
    let user = app.user("versions").await;
    for version in ["v9", "v10"] {
        let request = Request::get(format!("/api/{version}/users/@me"))
            .header("authorization", format!("Bot {}", user.token))
            .body(Default::default())
            .unwrap();
        assert_eq!(app.call(request).await.ok(200)["id"], user.id.to_string());
    }
}

async fn limited_app(route_limit: u32, global_per_second: u32) -> TestApp {
    let mut config = test_config();
    config.rate_limits = RateLimitConfig {
        route_limit,
        route_window: Duration::from_secs(30),
        global_per_second,
    };
    TestApp::with(&concord_store_sql::test_util::scratch_sqlite_url(), config).await
}

#[tokio::test]
async fn route_bucket_429_contract() {
    let app = limited_app(3, 1000).await;
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Limited").await;
    let path = format!("/channels/{}", guild.general);
    let first = app.get(&path, Some(&owner.token)).await;
    first.ok(200);
    assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("2"));
    let bucket = first.header("x-ratelimit-bucket").unwrap().to_owned();
    let reset_after: f64 = first
        .header("x-ratelimit-reset-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset_after > 0.0 && reset_after <= 30.0);
    let reset: f64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(reset > now && reset <= now + 31.0);
    app.get(&path, Some(&owner.token)).await.ok(200);
    assert_eq!(
        app.get(&path, Some(&owner.token))
            .await
            .header("x-ratelimit-remaining"),
        Some("0")
    );

    let limited = app.get(&path, Some(&owner.token)).await;
    let body = limited.error(429, 0);
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["global"], false);
    let retry_after = body["retry_after"]
        .as_f64()
        .expect("retry_after is a float");
    assert!(retry_after > 0.0 && retry_after <= 30.0);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(limited.header("x-ratelimit-bucket"), Some(bucket.as_str()));
    assert_eq!(limited.header("via"), Some("1.1 concord"));
    assert!(limited.header("x-ratelimit-global").is_none());
    let retry_header: f64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_header >= retry_after.floor() && retry_header <= 30.0);

    // Another top-level resource has its own bucket; the bucket name is the route's.
    let other = app
        .get(&format!("/channels/{}", guild.category), Some(&owner.token))
        .await;
    other.ok(200);
    assert_eq!(other.header("x-ratelimit-bucket"), Some(bucket.as_str()));
    // Another caller is not affected.
    let second = app.user("second").await;
    app.get(&path, Some(&second.token)).await.error(403, 50001);
}

#[tokio::test]
async fn global_429_contract() {
    let app = limited_app(1000, 2).await;
    let user = app.user("busy").await;
    // Registration counted against the anonymous caller; the token's user starts fresh.
    app.get("/users/@me", Some(&user.token)).await.ok(200);
    app.get("/gateway/bot", Some(&user.token)).await.ok(200);
    let limited = app.get("/users/@me/guilds", Some(&user.token)).await;
    let body = limited.error(429, 0);
    assert_eq!(body["global"], true);
    assert!(body["retry_after"].as_f64().unwrap() <= 1.0);
    assert_eq!(limited.header("x-ratelimit-global"), Some("true"));
    assert_eq!(limited.header("x-ratelimit-scope"), Some("global"));
    assert_eq!(limited.header("via"), Some("1.1 concord"));
    assert!(limited.header("retry-after").is_some());
    tokio::time::sleep(Duration::from_millis(1050)).await;
    app.get("/users/@me", Some(&user.token)).await.ok(200);
}

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("only this test installs a recorder");
        snapshotter
    })
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template() {
    let snapshotter = snapshotter();
    let app = TestApp::sqlite().await;
    let user = app.user("measured").await;
    app.get(&format!("/users/{}", user.id), Some(&user.token))
        .await
        .ok(200);
    app.get("/users/1", Some(&user.token))
        .await
        .error(404, 10013);
    app.post("/guilds", Some(&user.token), json!({ "name": "Metered" }))
        .await
        .ok(201);
    // Extension methods are legal HTTP; each must not become a label value of its own.
    for method in ["BREWCOFFEE", "BREWTEA"] {
        let request = Request::builder()
            .method(method)
            .uri("/api/v10/users/@me")
            .body(axum::body::Body::empty())
            .unwrap();
        app.call(request).await.error(405, 0);
    }

    let mut saw_counter = false;
    let mut saw_histogram = false;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        for (_, value) in &labels {
            assert!(
                value.bytes().filter(u8::is_ascii_digit).count() <= 6,
                "raw id in label {value}"
            );
            assert!(!value.starts_with("BREW"), "client-chosen method in label");
        }
        let label = |name: &str| {
            labels
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if key.name() == "concord_api_requests_total"
            && label("route") == Some("/users/{user_id}")
            && label("method") == Some("GET")
            && label("status") == Some("404")
        {
            assert!(matches!(value, DebugValue::Counter(n) if n >= 1));
            saw_counter = true;
        }
        if key.name() == "concord_api_request_duration_seconds" && label("route") == Some("/guilds")
        {
            assert!(matches!(value, DebugValue::Histogram(ref v) if !v.is_empty()));
            saw_histogram = true;
        }
    }
    assert!(saw_counter && saw_histogram);
}
