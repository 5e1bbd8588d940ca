use concord_core::permissions::Permissions;
use serde_json::json;

use crate::backend_tests;
use crate::common::{data, TestApp};

backend_tests!(
    get_channel_needs_view,
    modify_channel_updates_and_dispatches,
    modify_channel_checks_permissions,
    overwrites_only_carry_held_bits,
    delete_channel_returns_it_and_dispatches,
    delete_category_orphans_children,
    typing_dispatches,
);

async fn get_channel_needs_view(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Views").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/channels/{}", guild.general);
    let channel = app.get(&path, Some(&member.token)).await.ok(200);
    assert_eq!(channel["name"], "general");
    for key in [
        "id",
        "type",
        "guild_id",
        "name",
        "position",
        "permission_overwrites",
        "topic",
        "nsfw",
        "parent_id",
        "last_message_id",
        "rate_limit_per_user",
        "flags",
    ] {
        assert!(channel.get(key).is_some(), "missing {key}");
    }
    app.get(&path, Some(&stranger.token))
        .await
        .error(403, 50001);
    app.get("/channels/99999", Some(&member.token))
        .await
        .error(404, 10003);
    app.get("/channels/general", Some(&member.token))
        .await
        .form_error(&["channel_id"], "NUMBER_TYPE_COERCE");
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::VIEW_CHANNEL.bits(),
    )
    .await;
    app.get(&path, Some(&member.token)).await.error(403, 50001);
    app.get(&path, Some(&owner.token)).await.ok(200);
}

async fn modify_channel_updates_and_dispatches(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Edits").await;
    app.clear_events().await;
    let body = json!({
        "name": "renamed",
        "topic": "a topic",
        "nsfw": true,
        "position": 3,
        "rate_limit_per_user": 30,
        "parent_id": null,
        "permission_overwrites": [{ "id": guild.id.to_string(), "type": 0, "deny": "2048" }],
    });
    let channel = app
        .patch(
            &format!("/channels/{}", guild.general),
            Some(&owner.token),
            body,
        )
        .await
        .ok(200);
    assert_eq!(channel["name"], "renamed");
    assert_eq!(channel["topic"], "a topic");
    assert_eq!(channel["nsfw"], true);
    assert_eq!(channel["position"], 3);
    assert_eq!(channel["rate_limit_per_user"], 30);
    assert!(channel["parent_id"].is_null());
    let dispatch = app.guild_dispatch("CHANNEL_UPDATE").await;
    assert_eq!(data(&dispatch)["name"], "renamed");
    let access = dispatch.access.as_ref().unwrap();
    assert_eq!(
        access.overwrites.len(),
        1,
        "the update's filter uses the new overwrites"
    );
    assert_eq!(access.required, Permissions::VIEW_CHANNEL);
    let fetched = app
        .get(&format!("/channels/{}", guild.general), Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(fetched, channel);

    let reparent = json!({ "parent_id": guild.category.to_string(), "topic": null });
    let channel = app
        .patch(
            &format!("/channels/{}", guild.general),
            Some(&owner.token),
            reparent,
        )
        .await
        .ok(200);
    assert_eq!(channel["parent_id"], guild.category.to_string());
    assert!(channel["topic"].is_null());
}

async fn modify_channel_checks_permissions(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Locked").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/channels/{}", guild.general);
    app.patch(&path, Some(&member.token), json!({ "name": "mine" }))
        .await
        .error(403, 50013);
    app.patch(&path, Some(&stranger.token), json!({ "name": "mine" }))
        .await
        .error(403, 50001);
    app.patch("/channels/4040", Some(&owner.token), json!({ "name": "x" }))
        .await
        .error(404, 10003);
    let token = Some(owner.token.as_str());
    app.patch(&path, token, json!({ "name": "n".repeat(101) }))
        .await
        .form_error(&["name"], "BASE_TYPE_BAD_LENGTH");
    app.patch(&path, token, json!({ "rate_limit_per_user": -1 }))
        .await
        .form_error(&["rate_limit_per_user"], "NUMBER_TYPE_MIN");
    app.patch(&path, token, json!({ "nsfw": "yes" }))
        .await
        .form_error(&["nsfw"], "BASE_TYPE_BOOLEAN");
    app.patch(
        &path,
        token,
        json!({ "parent_id": guild.general.to_string() }),
    )
    .await
    .form_error(&["parent_id"], "CHANNEL_PARENT_INVALID_TYPE");
    app.patch(
        &format!("/channels/{}", guild.category),
        token,
        json!({ "parent_id": guild.category.to_string() }),
    )
    .await
    .form_error(&["parent_id"], "CHANNEL_PARENT_INVALID_TYPE");
}

async fn overwrites_only_carry_held_bits(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("moderator").await;
    let guild = app.guild(&owner, "Hierarchy").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/channels/{}", guild.general);
    let granted =
        Permissions::VIEW_CHANNEL | Permissions::MANAGE_CHANNELS | Permissions::MANAGE_ROLES;
    let member_overwrite =
        json!({ "id": member.id.to_string(), "type": 1, "allow": granted.bits().to_string() });
    app.patch(
        &path,
        Some(&owner.token),
        json!({ "permission_overwrites": [member_overwrite.clone()] }),
    )
    .await
    .ok(200);

    // The moderator can edit the channel and its overwrites, but only with bits it holds.
    app.patch(&path, Some(&member.token), json!({ "topic": "moderated" }))
        .await
        .ok(200);
    let lacking = json!({ "id": guild.id.to_string(), "type": 0, "allow": Permissions::MANAGE_MESSAGES.bits().to_string() });
    app.patch(
        &path,
        Some(&member.token),
        json!({ "permission_overwrites": [member_overwrite.clone(), lacking] }),
    )
    .await
    .error(403, 50013);
    let held = json!({ "id": guild.id.to_string(), "type": 0, "deny": Permissions::SEND_MESSAGES.bits().to_string() });
    let body = app
        .patch(
            &path,
            Some(&member.token),
            json!({ "permission_overwrites": [member_overwrite, held] }),
        )
        .await
        .ok(200);
    assert_eq!(body["permission_overwrites"].as_array().unwrap().len(), 2);

    // Without MANAGE_ROLES there, overwrites cannot be touched at all.
    let plain = json!({ "id": member.id.to_string(), "type": 1, "allow": (Permissions::VIEW_CHANNEL | Permissions::MANAGE_CHANNELS).bits().to_string() });
    app.patch(
        &path,
        Some(&owner.token),
        json!({ "permission_overwrites": [plain] }),
    )
    .await
    .ok(200);
    app.patch(
        &path,
        Some(&member.token),
        json!({ "permission_overwrites": [] }),
    )
    .await
    .error(403, 50013);
}

async fn delete_channel_returns_it_and_dispatches(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Deletes").await;
    app.join(&owner, &guild, &member).await;
    let created = app
        .post(&format!("/guilds/{}/channels", guild.id), Some(&owner.token), json!({
            "name": "secret",
            "permission_overwrites": [{ "id": guild.id.to_string(), "type": 0, "deny": "1024" }],
        }))
        .await
        .ok(201);
    let id = created["id"].as_str().unwrap();
    app.delete(&format!("/channels/{}", guild.general), Some(&member.token))
        .await
        .error(403, 50013);
    app.clear_events().await;
    let deleted = app
        .delete(&format!("/channels/{id}"), Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(deleted, created);
    let dispatch = app.guild_dispatch("CHANNEL_DELETE").await;
    assert_eq!(data(&dispatch)["id"], id);
    let access = dispatch.access.as_ref().unwrap();
    assert_eq!(
        access.overwrites.len(),
        1,
        "deletion filters with the old overwrites"
    );
    assert!(!access.allows(guild.id, member.id, &[]));
    assert!(access.allows(guild.id, owner.id, &[]));
    app.get(&format!("/channels/{id}"), Some(&owner.token))
        .await
        .error(404, 10003);
    app.delete(&format!("/channels/{id}"), Some(&owner.token))
        .await
        .error(404, 10003);
}

async fn delete_category_orphans_children(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Orphans").await;
    app.clear_events().await;
    app.delete(&format!("/channels/{}", guild.category), Some(&owner.token))
        .await
        .ok(200);
    for shard in crate::common::SHARDS {
        let dispatches = app.dispatches(shard).await;
        let names: Vec<_> = dispatches.iter().map(|d| d.kind.name()).collect();
        assert_eq!(names, ["CHANNEL_DELETE", "CHANNEL_UPDATE"]);
        let child = data(&dispatches[1]);
        assert_eq!(child["id"], guild.general.to_string());
        assert!(child["parent_id"].is_null());
    }
    let general = app
        .get(&format!("/channels/{}", guild.general), Some(&owner.token))
        .await
        .ok(200);
    assert!(general["parent_id"].is_null());
}

async fn typing_dispatches(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("typist").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Typing").await;
    app.join(&owner, &guild, &member).await;
    app.clear_events().await;
    let path = format!("/channels/{}/typing", guild.general);
    app.post(&path, Some(&member.token), json!({}))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("TYPING_START").await;
    let d = data(&dispatch);
    assert_eq!(d["channel_id"], guild.general.to_string());
    assert_eq!(d["guild_id"], guild.id.to_string());
    assert_eq!(d["user_id"], member.id.to_string());
    assert!(d["timestamp"].is_i64());
    assert_eq!(d["member"]["user"]["id"], member.id.to_string());
    assert_eq!(
        dispatch.access.as_ref().unwrap().required,
        Permissions::VIEW_CHANNEL
    );

    app.post(&path, Some(&stranger.token), json!({}))
        .await
        .error(403, 50001);
    app.post(
        &format!("/channels/{}/typing", guild.category),
        Some(&owner.token),
        json!({}),
    )
    .await
    .error(400, 50008);
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::SEND_MESSAGES.bits(),
    )
    .await;
    app.post(&path, Some(&member.token), json!({}))
        .await
        .error(403, 50013);
}
