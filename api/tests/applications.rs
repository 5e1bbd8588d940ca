use concord_core::bus::BusMessage;
use concord_core::id::UserId;
use serde_json::json;

use crate::backend_tests;
use crate::common::{test_config, TestApp};

backend_tests!(
    create_application_returns_bot_and_token,
    bots_cannot_create_applications,
    application_names_are_validated_and_bot_names_unique,
    current_application_for_the_bot,
    reset_bot_token_revokes_and_closes_sessions,
);

async fn create_application_returns_bot_and_token(app: TestApp) {
    let owner = app.user("owner").await;
    let body = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Helper Bot" }),
        )
        .await
        .ok(201);
    let bot = &body["bot"];
    assert_eq!(bot["id"], body["id"]);
    assert_eq!(bot["bot"], true);
    assert_eq!(bot["username"], "Helper Bot");
    let discriminator = bot["discriminator"].as_str().unwrap();
    assert!(discriminator.len() == 4 && discriminator.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(body["owner"]["id"], owner.id.to_string());
    assert_eq!(body["flags"], 0);
    let token = body["token"].as_str().unwrap();
    let me = app.get("/users/@me", Some(token)).await.ok(200);
    assert_eq!(me["id"], body["id"]);
    assert_eq!(me["bot"], true);
}

async fn bots_cannot_create_applications(app: TestApp) {
    let owner = app.user("owner").await;
    let body = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Bot One" }),
        )
        .await
        .ok(201);
    let bot_token = body["token"].as_str().unwrap();
    app.post(
        "/applications",
        Some(bot_token),
        json!({ "name": "Bot Two" }),
    )
    .await
    .error(403, 20001);
    app.post("/applications", None, json!({ "name": "Bot Two" }))
        .await
        .error(401, 0);
}

async fn application_names_are_validated_and_bot_names_unique(app: TestApp) {
    let owner = app.user("owner").await;
    app.post("/applications", Some(&owner.token), json!({ "name": "x" }))
        .await
        .form_error(&["name"], "BASE_TYPE_BAD_LENGTH");
    app.post("/applications", Some(&owner.token), json!({}))
        .await
        .form_error(&["name"], "BASE_TYPE_REQUIRED");
    let a = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Twin" }),
        )
        .await
        .ok(201);
    let b = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Twin" }),
        )
        .await
        .ok(201);
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["bot"]["username"], b["bot"]["username"]);
    assert!(b["bot"]["username"].as_str().unwrap().starts_with("Twin_"));
}

async fn current_application_for_the_bot(app: TestApp) {
    let owner = app.user("owner").await;
    let created = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Reader" }),
        )
        .await
        .ok(201);
    let token = created["token"].as_str().unwrap();
    for path in ["/oauth2/applications/@me", "/applications/@me"] {
        let body = app.get(path, Some(token)).await.ok(200);
        for key in [
            "id",
            "name",
            "icon",
            "description",
            "bot_public",
            "bot_require_code_grant",
            "owner",
            "verify_key",
            "flags",
            "team",
        ] {
            assert!(body.get(key).is_some(), "{path} lacks {key}: {body}");
        }
        assert_eq!(body["id"], created["id"]);
        assert_eq!(body["owner"]["id"], owner.id.to_string());
        assert!(body["team"].is_null());
        assert!(
            body.get("token").is_none(),
            "the token is only shown at creation"
        );
    }
    app.get("/oauth2/applications/@me", Some(&owner.token))
        .await
        .error(404, 10002);
}

async fn reset_bot_token_revokes_and_closes_sessions(app: TestApp) {
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    let created = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Resettable" }),
        )
        .await
        .ok(201);
    let id = created["id"].as_str().unwrap();
    let bot: UserId = id.parse().unwrap();
    let old = created["token"].as_str().unwrap();
    app.clear_events().await;

    app.post(
        &format!("/applications/{id}/bot/reset"),
        Some(&stranger.token),
        json!({}),
    )
    .await
    .error(403, 50013);
    app.post("/applications/1/bot/reset", Some(&owner.token), json!({}))
        .await
        .error(404, 10002);
    let body = app
        .post(
            &format!("/applications/{id}/bot/reset"),
            Some(&owner.token),
            json!({}),
        )
        .await
        .ok(200);
    let new = body["token"].as_str().unwrap();
    app.get("/users/@me", Some(old)).await.error(401, 0);
    assert_eq!(app.get("/users/@me", Some(new)).await.ok(200)["id"], id);

    let published = app.published(app.user_shard(bot)).await;
    assert!(
        published.iter().any(|m| matches!(m,
            BusMessage::CloseUserSessions { code, user_id } if code.0 == 4004 && user_id.get() == bot.get())),
        "{published:?}"
    );
}

#[tokio::test]
async fn privileged_intents_by_default_sets_flags() {
    let mut config = test_config();
    config.privileged_intents_by_default = true;
    let app = TestApp::with(&concord_store_sql::test_util::scratch_sqlite_url(), config).await;
    let owner = app.user("owner").await;
    let body = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Privileged" }),
        )
        .await
        .ok(201);
    assert_eq!(
        body["flags"],
        concord_core::model::application::FLAGS_ALL_PRIVILEGED
    );
}
