use concord_core::permissions::Permissions;
use http::Request;
use serde_json::json;

use crate::backend_tests;
use crate::common::{data, TestApp};

backend_tests!(
    create_message_returns_and_dispatches,
    create_message_mentions,
    create_message_validates,
    create_message_checks_permissions,
    tts_needs_permission,
    replies,
    list_messages_pages,
    zero_is_the_lowest_query_bound,
    list_messages_without_history_is_empty,
    get_message,
    edit_message_author_only,
    delete_message_author_or_manager,
);

async fn create_message_returns_and_dispatches(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Chat").await;
    app.join(&owner, &guild, &member).await;
    app.clear_events().await;
    let path = format!("/channels/{}/messages", guild.general);
    let body = json!({ "content": format!("hello <@!{}>", owner.id), "nonce": "abc-123" });
    let message = app.post(&path, Some(&member.token), body).await.ok(200);
    for key in [
        "id",
        "channel_id",
        "author",
        "content",
        "timestamp",
        "edited_timestamp",
        "tts",
        "mention_everyone",
        "mentions",
        "mention_roles",
        "attachments",
        "embeds",
        "pinned",
        "type",
        "flags",
        "components",
    ] {
        assert!(message.get(key).is_some(), "missing {key}");
    }
    assert_eq!(message["nonce"], "abc-123");
    assert_eq!(message["type"], 0);
    assert_eq!(message["author"]["id"], member.id.to_string());
    assert_eq!(message["channel_id"], guild.general.to_string());
    assert_eq!(message["mentions"][0]["id"], owner.id.to_string());
    assert!(message["edited_timestamp"].is_null());

    let dispatch = app.guild_dispatch("MESSAGE_CREATE").await;
    let d = data(&dispatch);
    assert_eq!(d["id"], message["id"]);
    assert_eq!(d["guild_id"], guild.id.to_string());
    assert_eq!(d["nonce"], "abc-123");
    assert_eq!(d["content"], message["content"]);
    let member_obj = &d["member"];
    assert!(
        member_obj.get("user").is_none(),
        "message member has no user"
    );
    for key in ["roles", "joined_at", "deaf", "mute", "flags"] {
        assert!(member_obj.get(key).is_some(), "member lacks {key}");
    }
    let stripped: serde_json::Value = serde_json::from_slice(
        dispatch
            .data_without_content
            .as_ref()
            .expect("content-free copy"),
    )
    .unwrap();
    assert_eq!(stripped["content"], "");
    assert_eq!(stripped["embeds"], json!([]));
    assert_eq!(stripped["attachments"], json!([]));
    assert_eq!(stripped["components"], json!([]));
    assert_eq!(stripped["id"], message["id"]);
    assert!(dispatch.content_exempt.contains(&member.id));
    assert!(dispatch.content_exempt.contains(&owner.id));
    assert_eq!(
        dispatch.access.as_ref().unwrap().required,
        Permissions::VIEW_CHANNEL
    );

    let numeric = app
        .post(
            &path,
            Some(&member.token),
            json!({ "content": "n", "nonce": 42 }),
        )
        .await
        .ok(200);
    assert_eq!(numeric["nonce"], 42);
}

async fn create_message_mentions(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let guild = app.guild(&owner, "Mentions").await;
    app.join(&owner, &guild, &member).await;
    let content = format!(
        "<@{}> <@{}> <@&{}> @everyone",
        member.id, outsider.id, guild.id
    );
    let message = app.message(&owner, guild.general, &content).await;
    let mentioned: Vec<_> = message["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(
        mentioned,
        vec![json!(member.id.to_string())],
        "only guild members are mentioned"
    );
    assert!(message["mentions"][0].get("public_flags").is_some());
    assert_eq!(
        message["mention_roles"],
        json!([]),
        "@everyone is not a role mention"
    );
    assert_eq!(message["mention_everyone"], true);
    // Without MENTION_EVERYONE, @everyone is plain text.
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::MENTION_EVERYONE.bits(),
    )
    .await;
    let quiet = app.message(&member, guild.general, "@everyone hi").await;
    assert_eq!(quiet["mention_everyone"], false);
}

async fn create_message_validates(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Validation").await;
    let path = format!("/channels/{}/messages", guild.general);
    let token = Some(owner.token.as_str());
    app.post(&path, token, json!({ "content": "" }))
        .await
        .error(400, 50006);
    app.post(&path, token, json!({ "content": "   " }))
        .await
        .error(400, 50006);
    app.post(&path, token, json!({})).await.error(400, 50006);
    app.post(&path, token, json!({ "content": "x".repeat(2001) }))
        .await
        .form_error(&["content"], "BASE_TYPE_MAX_LENGTH");
    app.post(&path, token, json!({ "content": "x".repeat(2000) }))
        .await
        .ok(200);
    app.post(
        &path,
        token,
        json!({ "content": "n", "nonce": "x".repeat(26) }),
    )
    .await
    .form_error(&["nonce"], "BASE_TYPE_MAX_LENGTH");
    app.post(&path, token, json!({ "content": "n", "tts": "loud" }))
        .await
        .form_error(&["tts"], "BASE_TYPE_BOOLEAN");
    app.post(&path, token, json!({ "content": 5 }))
        .await
        .form_error(&["content"], "BASE_TYPE_STRING");

    let raw = |content_type: Option<&str>, body: &'static str| {
        let mut request = Request::post(format!("/api/v10{path}"))
            .header("authorization", format!("Bot {}", owner.token));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.body(axum::body::Body::from(body)).unwrap()
    };
    app.call(raw(Some("application/json"), "{\"content\": "))
        .await
        .error(400, 50109);
    app.call(raw(Some("application/json"), ""))
        .await
        .error(400, 50109);
    let wrong_type = app
        .call(raw(Some("text/plain"), "{\"content\":\"hi\"}"))
        .await;
    wrong_type.form_error(&[], "CONTENT_TYPE_INVALID");
    app.call(raw(None, "{\"content\":\"hi\"}"))
        .await
        .form_error(&[], "CONTENT_TYPE_INVALID");
    app.call(raw(
        Some("application/json; charset=utf-8"),
        "{\"content\":\"hi\"}",
    ))
    .await
    .ok(200);
}

async fn create_message_checks_permissions(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Perms").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/channels/{}/messages", guild.general);
    let body = json!({ "content": "hi" });
    app.post(&path, Some(&stranger.token), body.clone())
        .await
        .error(403, 50001);
    app.post("/channels/1234/messages", Some(&member.token), body.clone())
        .await
        .error(404, 10003);
    app.post(
        &format!("/channels/{}/messages", guild.category),
        Some(&owner.token),
        body.clone(),
    )
    .await
    .error(400, 50008);
    app.post(&path, None, body.clone()).await.error(401, 0);
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::SEND_MESSAGES.bits(),
    )
    .await;
    app.post(&path, Some(&member.token), body.clone())
        .await
        .error(403, 50013);
    app.post(&path, Some(&owner.token), body.clone())
        .await
        .ok(200);
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::VIEW_CHANNEL.bits(),
    )
    .await;
    app.post(&path, Some(&member.token), body)
        .await
        .error(403, 50001);
}

async fn tts_needs_permission(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Loud").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/channels/{}/messages", guild.general);
    let body = json!({ "content": "speak", "tts": true });
    assert_eq!(
        app.post(&path, Some(&member.token), body.clone())
            .await
            .ok(200)["tts"],
        true
    );
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::SEND_TTS_MESSAGES.bits(),
    )
    .await;
    assert_eq!(
        app.post(&path, Some(&member.token), body).await.ok(200)["tts"],
        false
    );
}

async fn replies(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Replies").await;
    app.join(&owner, &guild, &member).await;
    let original = app.message(&owner, guild.general, "question").await;
    let path = format!("/channels/{}/messages", guild.general);
    let reply = app
        .post(
            &path,
            Some(&member.token),
            json!({ "content": "answer", "message_reference": { "message_id": original["id"] } }),
        )
        .await
        .ok(200);
    assert_eq!(reply["type"], 19);
    assert_eq!(reply["message_reference"]["message_id"], original["id"]);
    assert_eq!(reply["referenced_message"]["id"], original["id"]);

    let missing = json!({ "content": "x", "message_reference": { "message_id": "12345" } });
    app.post(&path, Some(&member.token), missing)
        .await
        .form_error(&["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE");
    let lenient = json!({ "content": "x", "message_reference": { "message_id": "12345", "fail_if_not_exists": false } });
    let plain = app.post(&path, Some(&member.token), lenient).await.ok(200);
    assert_eq!(plain["type"], 0);
    let no_id = json!({ "content": "x", "message_reference": {} });
    app.post(&path, Some(&member.token), no_id)
        .await
        .form_error(&["message_reference", "message_id"], "BASE_TYPE_REQUIRED");
    let forward =
        json!({ "content": "x", "message_reference": { "message_id": original["id"], "type": 1 } });
    app.post(&path, Some(&member.token), forward)
        .await
        .form_error(&["message_reference", "type"], "BASE_TYPE_CHOICES");

    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::READ_MESSAGE_HISTORY.bits(),
    )
    .await;
    let body =
        json!({ "content": "answer", "message_reference": { "message_id": original["id"] } });
    app.post(&path, Some(&member.token), body)
        .await
        .error(403, 160002);
}

async fn list_messages_pages(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "History").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.message(&owner, guild.general, &format!("m{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let path = format!("/channels/{}/messages", guild.general);
    let token = Some(owner.token.as_str());
    let page = app.get(&path, token).await.ok(200);
    let got: Vec<_> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(got, newest_first);
    let two = app.get(&format!("{path}?limit=2"), token).await.ok(200);
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert_eq!(two[0]["id"], ids[4]);
    let before = app
        .get(&format!("{path}?before={}&limit=2", ids[2]), token)
        .await
        .ok(200);
    let before: Vec<_> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(before, vec![ids[1].clone(), ids[0].clone()]);
    let after = app
        .get(&format!("{path}?after={}", ids[2]), token)
        .await
        .ok(200);
    let after: Vec<_> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after, vec![ids[4].clone(), ids[3].clone()]);
    let around = app
        .get(&format!("{path}?around={}&limit=3", ids[2]), token)
        .await
        .ok(200);
    assert!(around
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == ids[2].as_str()));
    app.get(&format!("{path}?before={}&after={}", ids[0], ids[1]), token)
        .await
        .form_error(&[], "MESSAGE_LIST_ARGS_MUTUALLY_EXCLUSIVE");
    app.get(&format!("{path}?limit=101"), token)
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MAX");
    app.get(&format!("{path}?limit=0"), token)
        .await
        .form_error(&["limit"], "NUMBER_TYPE_MIN");
    app.get(&format!("{path}?before=abc"), token)
        .await
        .form_error(&["before"], "NUMBER_TYPE_COERCE");
}

/// discord.py sends `after=0` (its OLDEST_OBJECT) when paging members, guilds and oldest-first
/// history; Discord documents 0 as the default of `after`.
async fn zero_is_the_lowest_query_bound(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Zero").await;
    app.join(&owner, &guild, &member).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.message(&owner, guild.general, &format!("m{i}")).await["id"].clone());
    }
    let token = Some(owner.token.as_str());
    let path = format!("/channels/{}/messages", guild.general);
    let oldest = app
        .get(&format!("{path}?after=0&limit=2"), token)
        .await
        .ok(200);
    let oldest: Vec<_> = oldest
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(oldest, vec![ids[1].clone(), ids[0].clone()]);
    let before_zero = app.get(&format!("{path}?before=0"), token).await.ok(200);
    assert_eq!(before_zero, json!([]));
    let members = app
        .get(
            &format!("/guilds/{}/members?limit=10&after=0", guild.id),
            token,
        )
        .await
        .ok(200);
    assert_eq!(members.as_array().unwrap().len(), 2);
    let guilds = app.get("/users/@me/guilds?after=0", token).await.ok(200);
    assert_eq!(guilds[0]["id"], guild.id.to_string());
    app.get(&format!("{path}?after=-1"), token)
        .await
        .form_error(&["after"], "NUMBER_TYPE_COERCE");
}

async fn list_messages_without_history_is_empty(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Amnesia").await;
    app.join(&owner, &guild, &member).await;
    app.message(&owner, guild.general, "before your time").await;
    let path = format!("/channels/{}/messages", guild.general);
    assert_eq!(
        app.get(&path, Some(&member.token))
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.get(&path, Some(&stranger.token))
        .await
        .error(403, 50001);
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::READ_MESSAGE_HISTORY.bits(),
    )
    .await;
    assert_eq!(app.get(&path, Some(&member.token)).await.ok(200), json!([]));
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::VIEW_CHANNEL.bits(),
    )
    .await;
    app.get(&path, Some(&member.token)).await.error(403, 50001);
}

async fn get_message(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Single").await;
    app.join(&owner, &guild, &member).await;
    let message = app.message(&owner, guild.general, "one").await;
    let path = format!(
        "/channels/{}/messages/{}",
        guild.general,
        message["id"].as_str().unwrap()
    );
    let got = app.get(&path, Some(&member.token)).await.ok(200);
    assert_eq!(got["content"], "one");
    app.get(
        &format!("/channels/{}/messages/777", guild.general),
        Some(&member.token),
    )
    .await
    .error(404, 10008);
    app.get(
        &format!("/channels/{}/messages/x", guild.general),
        Some(&member.token),
    )
    .await
    .form_error(&["message_id"], "NUMBER_TYPE_COERCE");
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::READ_MESSAGE_HISTORY.bits(),
    )
    .await;
    app.get(&path, Some(&member.token)).await.error(403, 50013);
}

async fn edit_message_author_only(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let guild = app.guild(&owner, "Edits").await;
    app.join(&owner, &guild, &member).await;
    let message = app.message(&member, guild.general, "draft").await;
    let path = format!(
        "/channels/{}/messages/{}",
        guild.general,
        message["id"].as_str().unwrap()
    );
    app.clear_events().await;
    let edited = app
        .patch(
            &path,
            Some(&member.token),
            json!({ "content": format!("final <@{}>", owner.id) }),
        )
        .await
        .ok(200);
    assert_eq!(edited["content"], format!("final <@{}>", owner.id));
    assert!(edited["edited_timestamp"].is_string());
    assert_eq!(edited["mentions"][0]["id"], owner.id.to_string());
    let dispatch = app.guild_dispatch("MESSAGE_UPDATE").await;
    let d = data(&dispatch);
    for key in [
        "id",
        "channel_id",
        "guild_id",
        "author",
        "member",
        "content",
        "timestamp",
        "edited_timestamp",
        "mentions",
        "embeds",
        "type",
    ] {
        assert!(
            d.get(key).is_some(),
            "MESSAGE_UPDATE is a full message; missing {key}"
        );
    }
    assert!(dispatch.data_without_content.is_some());

    app.patch(&path, Some(&owner.token), json!({ "content": "hijack" }))
        .await
        .error(403, 50005);
    app.patch(
        &path,
        Some(&member.token),
        json!({ "content": "x".repeat(2001) }),
    )
    .await
    .form_error(&["content"], "BASE_TYPE_MAX_LENGTH");
    app.patch(&path, Some(&member.token), json!({ "content": "" }))
        .await
        .error(400, 50006);
    app.patch(
        &format!("/channels/{}/messages/31337", guild.general),
        Some(&member.token),
        json!({ "content": "?" }),
    )
    .await
    .error(404, 10008);
}

async fn delete_message_author_or_manager(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let other = app.user("other").await;
    let guild = app.guild(&owner, "Deletes").await;
    app.join(&owner, &guild, &member).await;
    app.join(&owner, &guild, &other).await;
    let mine = app.message(&member, guild.general, "mine").await;
    let theirs = app.message(&member, guild.general, "theirs").await;
    let path = |m: &serde_json::Value| {
        format!(
            "/channels/{}/messages/{}",
            guild.general,
            m["id"].as_str().unwrap()
        )
    };
    app.delete(&path(&mine), Some(&other.token))
        .await
        .error(403, 50013);
    app.clear_events().await;
    app.delete(&path(&mine), Some(&member.token))
        .await
        .no_content();
    let dispatch = app.guild_dispatch("MESSAGE_DELETE").await;
    assert_eq!(
        data(&dispatch),
        json!({ "id": mine["id"], "channel_id": guild.general.to_string(), "guild_id": guild.id.to_string() })
    );
    app.delete(&path(&theirs), Some(&owner.token))
        .await
        .no_content();
    app.delete(&path(&mine), Some(&member.token))
        .await
        .error(404, 10008);
    app.get(&path(&theirs), Some(&member.token))
        .await
        .error(404, 10008);
}
