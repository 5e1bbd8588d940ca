use concord_core::bus::BusMessage;
use concord_core::permissions::Permissions;
use serde_json::json;

use crate::backend_tests;
use crate::common::{data, TestApp};

backend_tests!(
    create_guild_builds_defaults_and_joins_owner,
    create_guild_validates,
    get_guild_for_members_only,
    modify_guild_updates_and_dispatches,
    modify_guild_checks_permissions_and_fields,
    transfer_ownership,
    delete_guild_owner_only,
    list_channels,
    create_channel_dispatches_with_access,
    create_channel_validates,
    list_and_get_members,
);

async fn create_guild_builds_defaults_and_joins_owner(app: TestApp) {
    let owner = app.user("owner").await;
    app.clear_events().await;
    let guild = app
        .post(
            "/guilds",
            Some(&owner.token),
            json!({ "name": "  Concordia  " }),
        )
        .await
        .ok(201);
    assert_eq!(guild["name"], "Concordia");
    assert_eq!(guild["owner_id"], owner.id.to_string());
    let id = guild["id"].as_str().unwrap();
    let roles = guild["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["id"], id, "@everyone shares the guild id");
    assert_eq!(
        roles[0]["permissions"],
        Permissions::DEFAULT_EVERYONE.bits().to_string()
    );
    for key in [
        "afk_channel_id",
        "verification_level",
        "default_message_notifications",
        "explicit_content_filter",
        "features",
        "mfa_level",
        "preferred_locale",
        "premium_tier",
        "nsfw_level",
        "system_channel_flags",
        "emojis",
        "stickers",
    ] {
        assert!(guild.get(key).is_some(), "missing {key}");
    }
    let channels = app
        .get(&format!("/guilds/{id}/channels"), Some(&owner.token))
        .await
        .ok(200);
    let channels = channels.as_array().unwrap();
    assert_eq!(channels.len(), 2);
    let category = channels.iter().find(|c| c["type"] == 4).unwrap();
    let general = channels.iter().find(|c| c["type"] == 0).unwrap();
    assert_eq!(category["name"], "Text Channels");
    assert_eq!(general["name"], "general");
    assert_eq!(general["parent_id"], category["id"]);
    assert_eq!(guild["system_channel_id"], general["id"]);

    let published = app.published(app.user_shard(owner.id)).await;
    assert!(published.iter().any(
        |m| matches!(m, BusMessage::GuildJoined { guild_id, user_id }
        if guild_id.to_string() == id && *user_id == owner.id)
    ));
}

async fn create_guild_validates(app: TestApp) {
    let owner = app.user("owner").await;
    let token = Some(owner.token.as_str());
    app.post("/guilds", token, json!({ "name": "x" }))
        .await
        .form_error(&["name"], "BASE_TYPE_BAD_LENGTH");
    app.post("/guilds", token, json!({ "name": "y".repeat(101) }))
        .await
        .form_error(&["name"], "BASE_TYPE_BAD_LENGTH");
    app.post("/guilds", token, json!({}))
        .await
        .form_error(&["name"], "BASE_TYPE_REQUIRED");
    app.post("/guilds", None, json!({ "name": "Anon" }))
        .await
        .error(401, 0);
}

async fn get_guild_for_members_only(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Private").await;
    app.join(&owner, &guild, &member).await;
    let body = app
        .get(&format!("/guilds/{}", guild.id), Some(&member.token))
        .await
        .ok(200);
    assert_eq!(body["id"], guild.id.to_string());
    assert!(body.get("approximate_member_count").is_none());
    let counted = app
        .get(
            &format!("/guilds/{}?with_counts=true", guild.id),
            Some(&member.token),
        )
        .await
        .ok(200);
    assert_eq!(counted["approximate_member_count"], 2);
    app.get(&format!("/guilds/{}", guild.id), Some(&stranger.token))
        .await
        .error(403, 50001);
    app.get("/guilds/424242", Some(&member.token))
        .await
        .error(404, 10004);
    app.get("/guilds/nope", Some(&member.token))
        .await
        .form_error(&["guild_id"], "NUMBER_TYPE_COERCE");
}

async fn modify_guild_updates_and_dispatches(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Old Name").await;
    app.clear_events().await;
    let body = json!({
        "name": "New Name",
        "description": "about",
        "verification_level": 2,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "afk_timeout": 900,
        "preferred_locale": "fr",
        "system_channel_id": null,
    });
    let updated = app
        .patch(&format!("/guilds/{}", guild.id), Some(&owner.token), body)
        .await
        .ok(200);
    assert_eq!(updated["name"], "New Name");
    assert_eq!(updated["description"], "about");
    assert_eq!(updated["verification_level"], 2);
    assert_eq!(updated["default_message_notifications"], 1);
    assert_eq!(updated["explicit_content_filter"], 2);
    assert_eq!(updated["afk_timeout"], 900);
    assert_eq!(updated["preferred_locale"], "fr");
    assert!(updated["system_channel_id"].is_null());
    let dispatch = app.guild_dispatch("GUILD_UPDATE").await;
    assert_eq!(dispatch.guild_id, Some(guild.id));
    assert_eq!(data(&dispatch)["name"], "New Name");
    let restored = json!({ "system_channel_id": guild.general.to_string() });
    let updated = app
        .patch(
            &format!("/guilds/{}", guild.id),
            Some(&owner.token),
            restored,
        )
        .await
        .ok(200);
    assert_eq!(updated["system_channel_id"], guild.general.to_string());
}

async fn modify_guild_checks_permissions_and_fields(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Guarded").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/guilds/{}", guild.id);
    app.patch(&path, Some(&member.token), json!({ "name": "Mine" }))
        .await
        .error(403, 50013);
    app.patch(&path, Some(&stranger.token), json!({ "name": "Mine" }))
        .await
        .error(403, 50001);
    app.patch(
        "/guilds/777",
        Some(&owner.token),
        json!({ "name": "Ghost" }),
    )
    .await
    .error(404, 10004);
    let token = Some(owner.token.as_str());
    app.patch(&path, token, json!({ "verification_level": 9 }))
        .await
        .form_error(&["verification_level"], "BASE_TYPE_CHOICES");
    app.patch(&path, token, json!({ "afk_timeout": 61 }))
        .await
        .form_error(&["afk_timeout"], "BASE_TYPE_CHOICES");
    app.patch(&path, token, json!({ "preferred_locale": "xx" }))
        .await
        .form_error(&["preferred_locale"], "BASE_TYPE_CHOICES");
    app.patch(&path, token, json!({ "name": "z" }))
        .await
        .form_error(&["name"], "BASE_TYPE_BAD_LENGTH");
    app.patch(
        &path,
        token,
        json!({ "system_channel_id": guild.category.to_string() }),
    )
    .await
    .form_error(&["system_channel_id"], "CHANNEL_INVALID");
    app.patch(
        &path,
        token,
        json!({ "afk_channel_id": guild.general.to_string() }),
    )
    .await
    .form_error(&["afk_channel_id"], "CHANNEL_INVALID");
    app.patch(&path, token, json!({ "afk_timeout": "soon" }))
        .await
        .form_error(&["afk_timeout"], "NUMBER_TYPE_COERCE");
}

async fn transfer_ownership(app: TestApp) {
    let owner = app.user("owner").await;
    let heir = app.user("heir").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Kingdom").await;
    app.join(&owner, &guild, &heir).await;
    let path = format!("/guilds/{}", guild.id);
    app.patch(
        &path,
        Some(&owner.token),
        json!({ "owner_id": stranger.id.to_string() }),
    )
    .await
    .error(404, 10007);
    let body = app
        .patch(
            &path,
            Some(&owner.token),
            json!({ "owner_id": heir.id.to_string() }),
        )
        .await
        .ok(200);
    assert_eq!(body["owner_id"], heir.id.to_string());
    // The former owner is an ordinary member now.
    app.patch(
        &path,
        Some(&owner.token),
        json!({ "owner_id": owner.id.to_string() }),
    )
    .await
    .error(403, 50013);
}

async fn delete_guild_owner_only(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Doomed").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/guilds/{}", guild.id);
    app.delete(&path, Some(&member.token))
        .await
        .error(403, 50013);
    app.clear_events().await;
    app.delete(&path, Some(&owner.token)).await.no_content();
    for shard in crate::common::SHARDS {
        let published = app.published(shard).await;
        assert_eq!(published.len(), 2, "{published:?}");
        match &published[0] {
            BusMessage::Dispatch(d) => {
                assert_eq!(d.kind.name(), "GUILD_DELETE");
                assert_eq!(data(d), json!({ "id": guild.id.to_string() }));
            }
            other => panic!("expected GUILD_DELETE first, got {other:?}"),
        }
        assert!(
            matches!(published[1], BusMessage::GuildRemoved { guild_id } if guild_id == guild.id)
        );
    }
    app.get(&path, Some(&owner.token)).await.error(404, 10004);
    app.delete(&path, Some(&owner.token))
        .await
        .error(404, 10004);
}

async fn list_channels(app: TestApp) {
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Channels").await;
    let path = format!("/guilds/{}/channels", guild.id);
    let channels = app.get(&path, Some(&owner.token)).await.ok(200);
    for channel in channels.as_array().unwrap() {
        for key in [
            "id",
            "type",
            "guild_id",
            "name",
            "position",
            "permission_overwrites",
            "nsfw",
            "parent_id",
            "flags",
        ] {
            assert!(channel.get(key).is_some(), "missing {key}");
        }
    }
    app.get(&path, Some(&stranger.token))
        .await
        .error(403, 50001);
    app.get("/guilds/31337/channels", Some(&owner.token))
        .await
        .error(404, 10004);
}

async fn create_channel_dispatches_with_access(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Builders").await;
    app.clear_events().await;
    let body = json!({
        "name": "announcements",
        "type": 0,
        "topic": "news",
        "parent_id": guild.category.to_string(),
        "nsfw": true,
        "rate_limit_per_user": 10,
        "permission_overwrites": [
            { "id": guild.id.to_string(), "type": 0, "deny": Permissions::SEND_MESSAGES.bits().to_string() }
        ],
    });
    let channel = app
        .post(
            &format!("/guilds/{}/channels", guild.id),
            Some(&owner.token),
            body,
        )
        .await
        .ok(201);
    assert_eq!(channel["name"], "announcements");
    assert_eq!(channel["topic"], "news");
    assert_eq!(channel["parent_id"], guild.category.to_string());
    assert_eq!(channel["nsfw"], true);
    assert_eq!(channel["rate_limit_per_user"], 10);
    assert_eq!(channel["guild_id"], guild.id.to_string());
    assert_eq!(
        channel["permission_overwrites"][0]["deny"],
        Permissions::SEND_MESSAGES.bits().to_string()
    );
    assert_eq!(channel["permission_overwrites"][0]["allow"], "0");

    let dispatch = app.guild_dispatch("CHANNEL_CREATE").await;
    assert_eq!(data(&dispatch)["id"], channel["id"]);
    let access = dispatch
        .access
        .as_ref()
        .expect("channel events carry access");
    assert_eq!(access.required, Permissions::VIEW_CHANNEL);
    assert_eq!(access.overwrites.len(), 1);
    assert_eq!(access.owner_id, owner.id);

    let voice = app
        .post(
            &format!("/guilds/{}/channels", guild.id),
            Some(&owner.token),
            json!({ "name": "Voice", "type": 2 }),
        )
        .await
        .ok(201);
    assert_eq!(voice["type"], 2);
}

async fn create_channel_validates(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Strict").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/guilds/{}/channels", guild.id);
    let token = Some(owner.token.as_str());
    app.post(&path, Some(&member.token), json!({ "name": "mine" }))
        .await
        .error(403, 50013);
    app.post(&path, Some(&stranger.token), json!({ "name": "mine" }))
        .await
        .error(403, 50001);
    app.post("/guilds/5555/channels", token, json!({ "name": "ghost" }))
        .await
        .error(404, 10004);
    app.post(&path, token, json!({}))
        .await
        .form_error(&["name"], "BASE_TYPE_REQUIRED");
    app.post(&path, token, json!({ "name": "" }))
        .await
        .form_error(&["name"], "BASE_TYPE_BAD_LENGTH");
    app.post(&path, token, json!({ "name": "t", "type": 1 }))
        .await
        .form_error(&["type"], "BASE_TYPE_CHOICES");
    app.post(
        &path,
        token,
        json!({ "name": "t", "topic": "x".repeat(1025) }),
    )
    .await
    .form_error(&["topic"], "BASE_TYPE_MAX_LENGTH");
    app.post(
        &path,
        token,
        json!({ "name": "t", "rate_limit_per_user": 21601 }),
    )
    .await
    .form_error(&["rate_limit_per_user"], "NUMBER_TYPE_MAX");
    app.post(
        &path,
        token,
        json!({ "name": "t", "parent_id": guild.general.to_string() }),
    )
    .await
    .form_error(&["parent_id"], "CHANNEL_PARENT_INVALID_TYPE");
    app.post(&path, token, json!({ "name": "t", "parent_id": "abc" }))
        .await
        .form_error(&["parent_id"], "NUMBER_TYPE_COERCE");
    let bad_type = json!({ "name": "t", "permission_overwrites": [{ "id": guild.id.to_string(), "type": 7 }] });
    app.post(&path, token, bad_type)
        .await
        .form_error(&["permission_overwrites", "0", "type"], "BASE_TYPE_CHOICES");
    let unknown_role =
        json!({ "name": "t", "permission_overwrites": [{ "id": "12345", "type": 0 }] });
    app.post(&path, token, unknown_role)
        .await
        .form_error(&["permission_overwrites", "0", "id"], "BASE_TYPE_INVALID");
    let missing_id = json!({ "name": "t", "permission_overwrites": [{ "type": 0 }] });
    app.post(&path, token, missing_id)
        .await
        .form_error(&["permission_overwrites", "0", "id"], "BASE_TYPE_REQUIRED");
    let member_target = json!({ "name": "t", "permission_overwrites": [{ "id": member.id.to_string(), "type": 1, "allow": "1024" }] });
    app.post(&path, token, member_target).await.ok(201);
    // Snowflakes and permissions may arrive as JSON integers.
    let integers = json!({
        "name": "ints",
        "parent_id": guild.category.get(),
        "permission_overwrites": [{ "id": member.id.get(), "type": 1, "allow": 1024, "deny": null }],
    });
    let channel = app.post(&path, token, integers).await.ok(201);
    assert_eq!(channel["parent_id"], guild.category.to_string());
    assert_eq!(
        channel["permission_overwrites"][0]["id"],
        member.id.to_string()
    );
    assert_eq!(channel["permission_overwrites"][0]["allow"], "1024");
    assert_eq!(channel["permission_overwrites"][0]["deny"], "0");
    let stranger_target = json!({ "name": "t", "permission_overwrites": [{ "id": stranger.id.to_string(), "type": 1 }] });
    app.post(&path, token, stranger_target)
        .await
        .form_error(&["permission_overwrites", "0", "id"], "BASE_TYPE_INVALID");
}

async fn list_and_get_members(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Members").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/guilds/{}/members", guild.id);
    let one = app.get(&path, Some(&member.token)).await.ok(200);
    assert_eq!(one.as_array().unwrap().len(), 1, "default limit is 1");
    let all = app
        .get(&format!("{path}?limit=1000"), Some(&member.token))
        .await
        .ok(200);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2);
    for key in [
        "user",
        "roles",
        "joined_at",
        "deaf",
        "mute",
        "flags",
        "nick",
        "avatar",
        "pending",
        "premium_since",
        "communication_disabled_until",
    ] {
        assert!(all[0].get(key).is_some(), "missing {key}");
    }
    let first_id = all[0]["user"]["id"].as_str().unwrap();
    let after = app
        .get(
            &format!("{path}?limit=10&after={first_id}"),
            Some(&member.token),
        )
        .await
        .ok(200);
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["user"]["id"], all[1]["user"]["id"]);
    app.get(&format!("{path}?limit=0"), Some(&member.token))
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MIN");
    app.get(&format!("{path}?limit=1001"), Some(&member.token))
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MAX");
    app.get(&path, Some(&stranger.token))
        .await
        .error(403, 50001);

    let got = app
        .get(&format!("{path}/{}", member.id), Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(got["user"]["id"], member.id.to_string());
    app.get(&format!("{path}/{}", stranger.id), Some(&owner.token))
        .await
        .error(404, 10007);
    app.get(&format!("{path}/{}", member.id), Some(&stranger.token))
        .await
        .error(403, 50001);
    app.get(&format!("{path}/xyz"), Some(&owner.token))
        .await
        .form_error(&["user_id"], "NUMBER_TYPE_COERCE");
}
