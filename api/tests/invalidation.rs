//! Changes made through this process apply to the very next request, although token liveness
//! and permission contexts are cached: every test first warms the caches with a request that
//! succeeds, changes something, and expects the next request to see the change. The message
//! returned by a post, built without reading it back, must equal what the store reads back.

use concord_core::permissions::Permissions;
use http::Method;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::{TestApp, TestGuild, TestUser};

backend_tests!(
    logout_refuses_the_token_at_once,
    bot_token_reset_refuses_the_old_token_at_once,
    leaving_refuses_the_next_post_and_rejoining_allows_it,
    overwrites_apply_to_the_next_post,
    ownership_transfer_applies_to_the_next_post,
    guild_deletion_applies_to_the_next_post,
    channel_deletion_applies_to_the_next_post,
    profile_changes_show_in_the_next_message,
    posted_message_equals_the_stored_one,
);

fn messages_path(guild: &TestGuild) -> String {
    format!("/channels/{}/messages", guild.general)
}

async fn post(app: &TestApp, user: &TestUser, guild: &TestGuild, content: &str) -> u16 {
    let response = app
        .post(
            &messages_path(guild),
            Some(&user.token),
            json!({ "content": content }),
        )
        .await;
    response.status.as_u16()
}

async fn logout_refuses_the_token_at_once(app: TestApp) {
    let user = app.user("frank").await;
    let second = app
        .post(
            "/auth/login",
            None,
            json!({ "login": "frank", "password": "correct horse battery" }),
        )
        .await
        .ok(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/users/@me", Some(&user.token)).await.ok(200);
    app.get("/users/@me", Some(&second)).await.ok(200);
    app.send(Method::POST, "/auth/logout", Some(&user.token), None)
        .await
        .no_content();
    app.get("/users/@me", Some(&user.token)).await.error(401, 0);
    app.get("/users/@me", Some(&second)).await.ok(200);
}

async fn bot_token_reset_refuses_the_old_token_at_once(app: TestApp) {
    let owner = app.user("owner").await;
    let created = app
        .post(
            "/applications",
            Some(&owner.token),
            json!({ "name": "Bot" }),
        )
        .await
        .ok(201);
    let id = created["id"].as_str().unwrap();
    let old = created["token"].as_str().unwrap();
    app.get("/users/@me", Some(old)).await.ok(200);
    app.get("/applications/@me", Some(old)).await.ok(200);
    let new = app
        .post(
            &format!("/applications/{id}/bot/reset"),
            Some(&owner.token),
            json!({}),
        )
        .await
        .ok(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/users/@me", Some(old)).await.error(401, 0);
    app.get("/users/@me", Some(&new)).await.ok(200);
    app.get("/users/@me", Some(&owner.token)).await.ok(200);
}

async fn leaving_refuses_the_next_post_and_rejoining_allows_it(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Guild").await;
    app.join(&owner, &guild, &member).await;
    assert_eq!(post(&app, &member, &guild, "hi").await, 200);
    app.delete(
        &format!("/users/@me/guilds/{}", guild.id),
        Some(&member.token),
    )
    .await
    .no_content();
    app.post(
        &messages_path(&guild),
        Some(&member.token),
        json!({ "content": "still here?" }),
    )
    .await
    .error(403, 50001);
    let path = format!("/channels/{}/messages?limit=1", guild.general);
    app.get(&path, Some(&member.token)).await.error(403, 50001);
    app.join(&owner, &guild, &member).await;
    assert_eq!(post(&app, &member, &guild, "back").await, 200);
}

async fn overwrites_apply_to_the_next_post(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Guild").await;
    app.join(&owner, &guild, &member).await;
    assert_eq!(post(&app, &member, &guild, "hi").await, 200);

    let send = Permissions::SEND_MESSAGES.bits();
    app.everyone_overwrite(&owner, &guild, guild.general, 0, send)
        .await;
    app.post(
        &messages_path(&guild),
        Some(&member.token),
        json!({ "content": "denied" }),
    )
    .await
    .error(403, 50013);
    app.everyone_overwrite(&owner, &guild, guild.general, send, 0)
        .await;
    assert_eq!(post(&app, &member, &guild, "allowed again").await, 200);

    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::VIEW_CHANNEL.bits(),
    )
    .await;
    app.post(
        &messages_path(&guild),
        Some(&member.token),
        json!({ "content": "hidden" }),
    )
    .await
    .error(403, 50001);
}

async fn ownership_transfer_applies_to_the_next_post(app: TestApp) {
    let owner = app.user("owner").await;
    let heir = app.user("heir").await;
    let guild = app.guild(&owner, "Guild").await;
    app.join(&owner, &guild, &heir).await;
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::SEND_MESSAGES.bits(),
    )
    .await;
    // The owner passes every overwrite; the heir does not, yet.
    assert_eq!(post(&app, &owner, &guild, "mine").await, 200);
    assert_eq!(post(&app, &heir, &guild, "not yet").await, 403);
    app.patch(
        &format!("/guilds/{}", guild.id),
        Some(&owner.token),
        json!({ "owner_id": heir.id.to_string() }),
    )
    .await
    .ok(200);
    assert_eq!(post(&app, &heir, &guild, "now mine").await, 200);
    app.post(
        &messages_path(&guild),
        Some(&owner.token),
        json!({ "content": "no longer" }),
    )
    .await
    .error(403, 50013);
}

async fn guild_deletion_applies_to_the_next_post(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Guild").await;
    app.join(&owner, &guild, &member).await;
    assert_eq!(post(&app, &member, &guild, "hi").await, 200);
    assert_eq!(post(&app, &owner, &guild, "hi").await, 200);
    app.delete(&format!("/guilds/{}", guild.id), Some(&owner.token))
        .await
        .no_content();
    for user in [&member, &owner] {
        app.post(
            &messages_path(&guild),
            Some(&user.token),
            json!({ "content": "anyone?" }),
        )
        .await
        .error(404, 10003);
    }
}

async fn channel_deletion_applies_to_the_next_post(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Guild").await;
    assert_eq!(post(&app, &owner, &guild, "hi").await, 200);
    app.delete(&format!("/channels/{}", guild.general), Some(&owner.token))
        .await
        .ok(200);
    app.post(
        &messages_path(&guild),
        Some(&owner.token),
        json!({ "content": "gone" }),
    )
    .await
    .error(404, 10003);
}

async fn profile_changes_show_in_the_next_message(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Guild").await;
    app.join(&owner, &guild, &member).await;
    let mention = format!("hi <@{}>", member.id);
    let before = app.message(&member, guild.general, &mention).await;
    assert_eq!(before["author"]["username"], "member");
    let before = app.message(&owner, guild.general, &mention).await;
    assert_eq!(before["mentions"][0]["username"], "member");
    app.patch(
        "/users/@me",
        Some(&member.token),
        json!({ "username": "renamed", "global_name": "Renamed" }),
    )
    .await
    .ok(200);
    let after = app.message(&member, guild.general, "hello").await;
    assert_eq!(after["author"]["username"], "renamed");
    assert_eq!(after["author"]["global_name"], "Renamed");
    let after = app.message(&owner, guild.general, &mention).await;
    assert_eq!(after["mentions"][0]["username"], "renamed");
}

/// Posts `body` as `user` and checks the response against the stored message read back.
async fn post_and_compare(app: &TestApp, user: &TestUser, guild: &TestGuild, body: Value) -> Value {
    let posted = app
        .post(&messages_path(guild), Some(&user.token), body)
        .await
        .ok(200);
    let id = posted["id"].as_str().unwrap();
    let stored = app
        .get(
            &format!("/channels/{}/messages/{id}", guild.general),
            Some(&user.token),
        )
        .await
        .ok(200);
    assert_eq!(posted, stored);
    posted
}

async fn posted_message_equals_the_stored_one(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Guild").await;
    app.join(&owner, &guild, &member).await;

    post_and_compare(&app, &member, &guild, json!({ "content": "plain" })).await;
    let content = format!(
        "<@{}> <@!{}> <@{}> <@123> <@&{}> @everyone",
        owner.id, member.id, owner.id, guild.id
    );
    let mentions = post_and_compare(
        &app,
        &owner,
        &guild,
        json!({ "content": content, "nonce": 1234567890123_u64, "tts": true }),
    )
    .await;
    assert_eq!(mentions["mentions"].as_array().unwrap().len(), 2);
    assert_eq!(mentions["mention_everyone"], true);
    assert_eq!(mentions["tts"], true);
    assert_eq!(mentions["nonce"], 1234567890123_u64);
    let denied_everyone = post_and_compare(
        &app,
        &member,
        &guild,
        json!({ "content": "@here", "nonce": "n-1", "tts": true }),
    )
    .await;
    assert_eq!(denied_everyone["nonce"], "n-1");

    // A reply to a reply that carries a reaction: the target comes without its own target.
    let first = app.message(&owner, guild.general, "first").await;
    let second = post_and_compare(
        &app,
        &member,
        &guild,
        json!({ "content": "second", "message_reference": { "message_id": first["id"] } }),
    )
    .await;
    app.put(
        &format!(
            "/channels/{}/messages/{}/reactions/%F0%9F%91%8D/@me",
            guild.general,
            second["id"].as_str().unwrap()
        ),
        Some(&owner.token),
    )
    .await
    .no_content();
    let third = post_and_compare(
        &app,
        &owner,
        &guild,
        json!({
            "content": "third",
            "nonce": "n-2",
            "message_reference": { "message_id": second["id"], "channel_id": guild.general.to_string() },
        }),
    )
    .await;
    assert_eq!(third["referenced_message"]["reactions"][0]["me"], true);
    assert!(third["referenced_message"]
        .get("referenced_message")
        .is_none());
    assert_eq!(
        third["referenced_message"]["message_reference"]["message_id"],
        first["id"]
    );
}
