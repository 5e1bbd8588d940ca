use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use concord_core::bus::BusMessage;
use concord_core::permissions::Permissions;
use serde_json::json;

use crate::backend_tests;
use crate::common::{data, TestApp};

backend_tests!(
    current_user_has_every_required_field,
    modify_current_user_updates_and_dispatches,
    modify_current_user_validates,
    get_user_by_id,
    current_user_guilds_lists_with_permissions,
    current_user_guilds_pages_and_counts,
    leave_guild_publishes_in_order,
    leave_guild_failures,
);

async fn current_user_has_every_required_field(app: TestApp) {
    let user = app.user("fields").await;
    let me = app.get("/users/@me", Some(&user.token)).await.ok(200);
    for key in [
        "id",
        "username",
        "discriminator",
        "avatar",
        "global_name",
        "bot",
        "public_flags",
        "mfa_enabled",
        "flags",
        "verified",
        "locale",
        "email",
    ] {
        assert!(me.get(key).is_some(), "missing {key}: {me}");
    }
    assert!(me["avatar"].is_null());
}

async fn modify_current_user_updates_and_dispatches(app: TestApp) {
    let user = app.user("before").await;
    app.clear_events().await;
    let avatar = format!(
        "data:image/png;base64,{}",
        STANDARD.encode(b"\x89PNG\r\n\x1a\n not really")
    );
    let body = json!({ "username": "after", "global_name": "After Name", "avatar": avatar });
    let me = app
        .patch("/users/@me", Some(&user.token), body)
        .await
        .ok(200);
    assert_eq!(me["username"], "after");
    assert_eq!(me["global_name"], "After Name");
    let hash = me["avatar"].as_str().unwrap();
    assert!(
        hash.len() == 32
            && hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let shard = app.user_shard(user.id);
    let dispatches = app.dispatches(shard).await;
    assert_eq!(dispatches.len(), 1);
    let update = &dispatches[0];
    assert_eq!(update.kind.name(), "USER_UPDATE");
    assert_eq!(update.user_id, Some(user.id));
    assert_eq!(data(update)["username"], "after");
    assert!(app.dispatches(1 - shard).await.is_empty());

    let cleared = app
        .patch(
            "/users/@me",
            Some(&user.token),
            json!({ "avatar": null, "global_name": null }),
        )
        .await
        .ok(200);
    assert!(cleared["avatar"].is_null());
    assert!(cleared["global_name"].is_null());
    assert_eq!(cleared["username"], "after");
}

async fn modify_current_user_validates(app: TestApp) {
    let user = app.user("valid").await;
    app.user("taken").await;
    let token = Some(user.token.as_str());
    app.patch("/users/@me", token, json!({ "username": "taken" }))
        .await
        .form_error(&["username"], "USERNAME_ALREADY_TAKEN");
    app.patch("/users/@me", token, json!({ "username": "a" }))
        .await
        .form_error(&["username"], "BASE_TYPE_BAD_LENGTH");
    app.patch("/users/@me", token, json!({ "avatar": "not a data uri" }))
        .await
        .form_error(&["avatar"], "IMAGE_INVALID");
    app.patch(
        "/users/@me",
        token,
        json!({ "global_name": "x".repeat(33) }),
    )
    .await
    .form_error(&["global_name"], "BASE_TYPE_BAD_LENGTH");
    app.patch("/users/@me", None, json!({ "username": "zzz" }))
        .await
        .error(401, 0);
}

async fn get_user_by_id(app: TestApp) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let body = app
        .get(&format!("/users/{}", bob.id), Some(&alice.token))
        .await
        .ok(200);
    assert_eq!(body["username"], "bob");
    for key in [
        "id",
        "username",
        "discriminator",
        "avatar",
        "global_name",
        "bot",
        "public_flags",
    ] {
        assert!(body.get(key).is_some(), "missing {key}");
    }
    assert!(
        body.get("email").is_none(),
        "other users' emails stay private"
    );
    app.get("/users/123456789", Some(&alice.token))
        .await
        .error(404, 10013);
    app.get("/users/abc", Some(&alice.token))
        .await
        .form_error(&["user_id"], "NUMBER_TYPE_COERCE");
}

async fn current_user_guilds_lists_with_permissions(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Listed").await;
    app.join(&owner, &guild, &member).await;

    let owned = app
        .get("/users/@me/guilds", Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(owned.as_array().unwrap().len(), 1);
    let entry = &owned[0];
    assert_eq!(entry["id"], guild.id.to_string());
    assert_eq!(entry["name"], "Listed");
    assert_eq!(entry["owner"], true);
    assert_eq!(entry["permissions"], Permissions::all().bits().to_string());
    for key in ["icon", "banner", "features"] {
        assert!(entry.get(key).is_some());
    }
    let joined = app
        .get("/users/@me/guilds", Some(&member.token))
        .await
        .ok(200);
    assert_eq!(joined[0]["owner"], false);
    assert_eq!(
        joined[0]["permissions"],
        Permissions::DEFAULT_EVERYONE.bits().to_string()
    );
    assert!(joined[0].get("approximate_member_count").is_none());
}

async fn current_user_guilds_pages_and_counts(app: TestApp) {
    let owner = app.user("owner").await;
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        ids.push(app.guild(&owner, name).await.id);
    }
    let token = Some(owner.token.as_str());
    let first = app.get("/users/@me/guilds?limit=2", token).await.ok(200);
    assert_eq!(first.as_array().unwrap().len(), 2);
    assert_eq!(first[0]["id"], ids[0].to_string());
    let after = app
        .get(&format!("/users/@me/guilds?after={}", ids[1]), token)
        .await
        .ok(200);
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["id"], ids[2].to_string());
    let before = app
        .get(&format!("/users/@me/guilds?before={}", ids[1]), token)
        .await
        .ok(200);
    assert_eq!(before[0]["id"], ids[0].to_string());
    let counted = app
        .get("/users/@me/guilds?with_counts=true", token)
        .await
        .ok(200);
    assert_eq!(counted[0]["approximate_member_count"], 1);
    assert!(counted[0]["approximate_presence_count"].is_u64());
    app.get("/users/@me/guilds?limit=0", token)
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MIN");
    app.get("/users/@me/guilds?limit=201", token)
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MAX");
    app.get("/users/@me/guilds?limit=lots", token)
        .await
        .form_error(&["limit"], "NUMBER_TYPE_COERCE");
}

async fn leave_guild_publishes_in_order(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("leaver").await;
    let guild = app.guild(&owner, "Leavable").await;
    app.join(&owner, &guild, &member).await;
    app.clear_events().await;

    app.delete(
        &format!("/users/@me/guilds/{}", guild.id),
        Some(&member.token),
    )
    .await
    .no_content();

    let user_shard = app.user_shard(member.id);
    let on_user_shard = app.published(user_shard).await;
    let other_shard = app.published(1 - user_shard).await;
    // The leaver's shard: GUILD_DELETE for the leaver, then the unsubscribe, then the guild event.
    let position = |messages: &[BusMessage], pred: &dyn Fn(&BusMessage) -> bool| {
        messages.iter().position(pred)
    };
    let gone = position(
        &on_user_shard,
        &|m| matches!(m, BusMessage::Dispatch(d) if d.kind.name() == "GUILD_DELETE"),
    )
    .expect("GUILD_DELETE");
    let left = position(&on_user_shard, &|m| {
        matches!(m, BusMessage::GuildLeft { guild_id, user_id }
        if *guild_id == guild.id && *user_id == member.id)
    })
    .expect("GuildLeft");
    assert!(gone < left);
    let BusMessage::Dispatch(delete) = &on_user_shard[gone] else {
        unreachable!()
    };
    assert_eq!(delete.user_id, Some(member.id));
    assert_eq!(data(delete), json!({ "id": guild.id.to_string() }));

    for messages in [&on_user_shard, &other_shard] {
        let removed = messages
            .iter()
            .find_map(|m| match m {
                BusMessage::Dispatch(d) if d.kind.name() == "GUILD_MEMBER_REMOVE" => {
                    Some(d.clone())
                }
                _ => None,
            })
            .expect("GUILD_MEMBER_REMOVE on every guild shard");
        let d = data(&removed);
        assert_eq!(d["guild_id"], guild.id.to_string());
        assert_eq!(d["user"]["id"], member.id.to_string());
        assert_eq!(removed.user_id, None);
    }
    app.get(&format!("/guilds/{}", guild.id), Some(&member.token))
        .await
        .error(403, 50001);
}

async fn leave_guild_failures(app: TestApp) {
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Sticky").await;
    app.delete(
        &format!("/users/@me/guilds/{}", guild.id),
        Some(&owner.token),
    )
    .await
    .error(400, 50055);
    app.delete(
        &format!("/users/@me/guilds/{}", guild.id),
        Some(&stranger.token),
    )
    .await
    .error(404, 10004);
    app.delete("/users/@me/guilds/999999", Some(&stranger.token))
        .await
        .error(404, 10004);
}
