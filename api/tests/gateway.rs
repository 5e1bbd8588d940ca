use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(gateway_urls);

async fn gateway_urls(app: TestApp) {
    let body = app.get("/gateway", None).await.ok(200);
    assert_eq!(body, serde_json::json!({ "url": "ws://127.0.0.1:9999" }));
    app.get("/gateway/bot", None).await.error(401, 0);
    let user = app.user("gw").await;
    let body = app.get("/gateway/bot", Some(&user.token)).await.ok(200);
    assert_eq!(body["url"], "ws://127.0.0.1:9999");
    assert_eq!(body["shards"], 1);
    let limit = &body["session_start_limit"];
    assert_eq!(limit["total"], 1000);
    assert_eq!(limit["remaining"], 1000);
    assert_eq!(limit["max_concurrency"], 1);
    assert!(limit["reset_after"].is_u64());
}
