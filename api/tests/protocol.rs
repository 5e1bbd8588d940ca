//! Router-wide behaviour: unknown routes, methods and versions, rate limits, metrics.

use std::sync::OnceLock;
use std::time::Duration;

use concord_api::RateLimitConfig;
use http::{Method, Request};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;

use crate::backend_tests;
use crate::common::{test_config, TestApp};

backend_tests!(unknown_route_method_and_version, both_versions_serve_the_same_handlers);

async fn unknown_route_method_and_version(app: TestApp) {
    let user = app.user("proto").await;
    let not_found = app.get("/nothing/here", Some(&user.token)).await.error(404, 0);
    assert_eq!(not_found["message"], "404: Not Found");
    let request = Request::get("/elsewhere").body(Default::default()).unwrap();
    app.call(request).await.error(404, 0);
    let wrong_method = app.send(Method::PUT, "/users/@me", Some(&user.token), None).await.error(405, 0);
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
    config.rate_limits = RateLimitConfig { route_limit, route_window: Duration::from_secs(30), global_per_second };
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
    let reset_after: f64 = first.header("x-ratelimit-reset-after").unwrap().parse().unwrap();
    assert!(reset_after > 0.0 && reset_after <= 30.0);
    let reset: f64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(reset > now && reset <= now + 31.0);
    app.get(&path, Some(&owner.token)).await.ok(200);
    assert_eq!(app.get(&path, Some(&owner.token)).await.header("x-ratelimit-remaining"), Some("0"));

    let limited = app.get(&path, Some(&owner.token)).await;
    let body = limited.error(429, 0);
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["global"], false);
    let retry_after = body["retry_after"].as_f64().expect("retry_after is a float");
    assert!(retry_after > 0.0 && retry_after <= 30.0);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(limited.header("x-ratelimit-bucket"), Some(bucket.as_str()));
    assert_eq!(limited.header("via"), Some("1.1 concord"));
    assert!(limited.header("x-ratelimit-global").is_none());
    let retry_header: f64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_header >= retry_after.floor() && retry_header <= 30.0);

    // Another top-level resource has its own bucket; the bucket name is the route's.
    let other = app.get(&format!("/channels/{}", guild.category), Some(&owner.token)).await;
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
        recorder.install().expect("only this test installs a recorder");
        snapshotter
    })
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template() {
    let snapshotter = snapshotter();
    let app = TestApp::sqlite().await;
    let user = app.user("measured").await;
    app.get(&format!("/users/{}", user.id), Some(&user.token)).await.ok(200);
    app.get("/users/1", Some(&user.token)).await.error(404, 10013);
    app.post("/guilds", Some(&user.token), json!({ "name": "Metered" })).await.ok(201);

    let mut saw_counter = false;
    let mut saw_histogram = false;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<(String, String)> =
            key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        for (_, value) in &labels {
            assert!(!value.bytes().filter(u8::is_ascii_digit).count() > 6, "raw id in label {value}");
        }
        let label = |name: &str| labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if key.name() == "concord_api_requests_total"
            && label("route") == Some("/users/{user_id}")
            && label("method") == Some("GET")
            && label("status") == Some("404")
        {
            assert!(matches!(value, DebugValue::Counter(n) if n >= 1));
            saw_counter = true;
        }
        if key.name() == "concord_api_request_duration_seconds" && label("route") == Some("/guilds") {
            assert!(matches!(value, DebugValue::Histogram(ref v) if !v.is_empty()));
            saw_histogram = true;
        }
    }
    assert!(saw_counter && saw_histogram);
}
