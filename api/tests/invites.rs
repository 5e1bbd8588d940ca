use concord_core::bus::BusMessage;
use concord_core::permissions::Permissions;
use http::Request;
use serde_json::json;

use crate::backend_tests;
use crate::common::{data, TestApp};

backend_tests!(
    create_invite_returns_metadata_and_dispatches,
    create_invite_validates_and_checks_permissions,
    get_invite_without_auth,
    accept_invite_joins_and_publishes,
    accept_invite_failures,
    racing_accepts_by_one_user_use_the_invite_once,
);

async fn create_invite_returns_metadata_and_dispatches(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Inviting").await;
    app.clear_events().await;
    let path = format!("/channels/{}/invites", guild.general);
    let invite = app.post(&path, Some(&owner.token), json!({})).await.ok(200);
    let code = invite["code"].as_str().unwrap();
    assert!(code.len() >= 8 && code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(invite["uses"], 0);
    assert_eq!(invite["max_age"], 86400);
    assert_eq!(invite["max_uses"], 0);
    assert_eq!(invite["temporary"], false);
    assert!(invite["created_at"].is_string());
    assert!(invite["expires_at"].is_string());
    assert_eq!(invite["guild"]["id"], guild.id.to_string());
    assert_eq!(invite["channel"]["id"], guild.general.to_string());
    assert_eq!(invite["inviter"]["id"], owner.id.to_string());
    assert_eq!(invite["type"], 0);

    let dispatch = app.guild_dispatch("INVITE_CREATE").await;
    let d = data(&dispatch);
    assert_eq!(d["code"], code);
    assert_eq!(d["channel_id"], guild.general.to_string());
    assert_eq!(d["guild_id"], guild.id.to_string());
    assert_eq!(d["uses"], 0);
    assert_eq!(d["max_age"], 86400);
    assert_eq!(d["inviter"]["id"], owner.id.to_string());
    for key in ["created_at", "expires_at", "max_uses", "temporary"] {
        assert!(d.get(key).is_some(), "INVITE_CREATE lacks {key}");
    }
    assert_eq!(
        dispatch.access.as_ref().unwrap().required,
        Permissions::VIEW_CHANNEL | Permissions::MANAGE_CHANNELS
    );

    let forever = app
        .post(
            &path,
            Some(&owner.token),
            json!({ "max_age": 0, "max_uses": 5, "temporary": true }),
        )
        .await
        .ok(200);
    assert!(forever["expires_at"].is_null());
    assert_eq!(forever["max_uses"], 5);
    assert_eq!(forever["temporary"], true);
    assert_ne!(forever["code"], invite["code"]);
}

async fn create_invite_validates_and_checks_permissions(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let guild = app.guild(&owner, "Gated").await;
    app.join(&owner, &guild, &member).await;
    let path = format!("/channels/{}/invites", guild.general);
    let token = Some(owner.token.as_str());
    app.post(&path, token, json!({ "max_age": 604801 }))
        .await
        .form_error(&["max_age"], "NUMBER_TYPE_MAX");
    app.post(&path, token, json!({ "max_uses": 101 }))
        .await
        .form_error(&["max_uses"], "NUMBER_TYPE_MAX");
    app.post(&path, token, json!({ "max_uses": -1 }))
        .await
        .form_error(&["max_uses"], "NUMBER_TYPE_MIN");
    // A body is required, even if empty.
    let no_body = Request::post(format!("/api/v10{path}"))
        .header("authorization", format!("Bot {}", owner.token))
        .body(axum::body::Body::empty())
        .unwrap();
    app.call(no_body)
        .await
        .form_error(&[], "CONTENT_TYPE_INVALID");
    app.post(&path, Some(&stranger.token), json!({}))
        .await
        .error(403, 50001);
    app.post("/channels/8080/invites", token, json!({}))
        .await
        .error(404, 10003);
    app.post(
        &format!("/channels/{}/invites", guild.category),
        token,
        json!({}),
    )
    .await
    .error(400, 50024);
    app.everyone_overwrite(
        &owner,
        &guild,
        guild.general,
        0,
        Permissions::CREATE_INSTANT_INVITE.bits(),
    )
    .await;
    app.post(&path, Some(&member.token), json!({}))
        .await
        .error(403, 50013);
}

async fn get_invite_without_auth(app: TestApp) {
    let owner = app.user("owner").await;
    let guild = app.guild(&owner, "Public").await;
    let invite = app
        .post(
            &format!("/channels/{}/invites", guild.general),
            Some(&owner.token),
            json!({}),
        )
        .await
        .ok(200);
    let code = invite["code"].as_str().unwrap();
    let got = app.get(&format!("/invites/{code}"), None).await.ok(200);
    assert_eq!(got["code"], code);
    assert_eq!(got["guild"]["name"], "Public");
    assert!(got.get("uses").is_none(), "no metadata on lookup");
    assert!(got.get("approximate_member_count").is_none());
    let counted = app
        .get(
            &format!("/invites/{code}?with_counts=true"),
            Some(&owner.token),
        )
        .await
        .ok(200);
    assert_eq!(counted["approximate_member_count"], 1);
    app.get("/invites/doesnotexist", None)
        .await
        .error(404, 10006);
    app.get(&format!("/invites/{code}"), Some("bad.token.here"))
        .await
        .error(401, 0);
}

async fn accept_invite_joins_and_publishes(app: TestApp) {
    let owner = app.user("owner").await;
    let joiner = app.user("joiner").await;
    let guild = app.guild(&owner, "Welcoming").await;
    let invite = app
        .post(
            &format!("/channels/{}/invites", guild.general),
            Some(&owner.token),
            json!({}),
        )
        .await
        .ok(200);
    let code = invite["code"].as_str().unwrap();
    app.clear_events().await;
    let accepted = app
        .post(&format!("/invites/{code}"), Some(&joiner.token), json!({}))
        .await
        .ok(200);
    assert_eq!(accepted["guild"]["id"], guild.id.to_string());

    let joiner_shard = app.user_shard(joiner.id);
    // Interest is held for the joiner's shard before the join is announced, so a message posted
    // before that shard subscribes the joiner's sessions still reaches it.
    let interested = concord_core::topology::Topology::interested_slots(&*app.topology, guild.id)
        .await
        .unwrap();
    assert!(interested.contains(&joiner_shard));
    let on_joiner_shard = app.published(joiner_shard).await;
    let on_other = app.published(1 - joiner_shard).await;
    assert!(on_joiner_shard.iter().any(
        |m| matches!(m, BusMessage::GuildJoined { guild_id, user_id }
        if *guild_id == guild.id && *user_id == joiner.id)
    ));
    for messages in [&on_joiner_shard, &on_other] {
        let added = messages
            .iter()
            .find_map(|m| match m {
                BusMessage::Dispatch(d) if d.kind.name() == "GUILD_MEMBER_ADD" => Some(data(d)),
                _ => None,
            })
            .expect("GUILD_MEMBER_ADD on every guild shard");
        assert_eq!(added["guild_id"], guild.id.to_string());
        assert_eq!(added["user"]["id"], joiner.id.to_string());
        for key in ["roles", "joined_at", "deaf", "mute", "flags"] {
            assert!(added.get(key).is_some(), "member lacks {key}");
        }
    }
    app.get(&format!("/guilds/{}", guild.id), Some(&joiner.token))
        .await
        .ok(200);

    // Accepting again is a no-op.
    app.post(&format!("/invites/{code}"), Some(&joiner.token), json!({}))
        .await
        .ok(200);
    for shard in crate::common::SHARDS {
        assert!(app.published(shard).await.is_empty());
    }
    let members = app
        .get(
            &format!("/guilds/{}/members?limit=10", guild.id),
            Some(&owner.token),
        )
        .await
        .ok(200);
    assert_eq!(members.as_array().unwrap().len(), 2);
    let meta = app
        .get(&format!("/invites/{code}?with_counts=true"), None)
        .await
        .ok(200);
    assert_eq!(meta["approximate_member_count"], 2);
}

async fn accept_invite_failures(app: TestApp) {
    let owner = app.user("owner").await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    let guild = app.guild(&owner, "Exclusive").await;
    let path = format!("/channels/{}/invites", guild.general);
    let single = app
        .post(&path, Some(&owner.token), json!({ "max_uses": 1 }))
        .await
        .ok(200);
    let code = single["code"].as_str().unwrap();
    app.post(&format!("/invites/{code}"), None, json!({}))
        .await
        .error(401, 0);
    app.post(&format!("/invites/{code}"), Some(&first.token), json!({}))
        .await
        .ok(200);
    app.post(&format!("/invites/{code}"), Some(&second.token), json!({}))
        .await
        .error(404, 10006);
    app.get(&format!("/invites/{code}"), None)
        .await
        .error(404, 10006);
    app.post("/invites/nosuchcode", Some(&second.token), json!({}))
        .await
        .error(404, 10006);

    let short = app
        .post(&path, Some(&owner.token), json!({ "max_age": 1 }))
        .await
        .ok(200);
    let code = short["code"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.post(&format!("/invites/{code}"), Some(&second.token), json!({}))
        .await
        .error(404, 10006);
    app.get(&format!("/invites/{code}"), None)
        .await
        .error(404, 10006);
}

async fn racing_accepts_by_one_user_use_the_invite_once(app: TestApp) {
    let owner = app.user("owner").await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    let third = app.user("third").await;
    let guild = app.guild(&owner, "Capped").await;
    let invite = app
        .post(
            &format!("/channels/{}/invites", guild.general),
            Some(&owner.token),
            json!({ "max_uses": 2 }),
        )
        .await
        .ok(200);
    let path = format!("/invites/{}", invite["code"].as_str().unwrap());
    // The owner is a member already: accepting must not count a use.
    app.post(&path, Some(&owner.token), json!({})).await.ok(200);
    // One user accepting many times at once joins once and counts one use.
    let accept = || app.post(&path, Some(&first.token), json!({}));
    let results = tokio::join!(
        accept(),
        accept(),
        accept(),
        accept(),
        accept(),
        accept(),
        accept(),
        accept()
    );
    for response in [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
    ] {
        response.ok(200);
    }
    let joins = app
        .published(app.user_shard(first.id))
        .await
        .into_iter()
        .filter(|m| matches!(m, BusMessage::GuildJoined { user_id, .. } if *user_id == first.id))
        .count();
    assert_eq!(joins, 1);
    // So the second use is still there for someone else, and then the invite is spent.
    app.post(&path, Some(&second.token), json!({}))
        .await
        .ok(200);
    app.post(&path, Some(&third.token), json!({}))
        .await
        .error(404, 10006);
    let members = app
        .get(
            &format!("/guilds/{}/members?limit=10", guild.id),
            Some(&owner.token),
        )
        .await
        .ok(200);
    assert_eq!(members.as_array().unwrap().len(), 3);
}
