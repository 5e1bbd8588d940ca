//! Dispatch fan-out: sequencing, intents, VIEW_CHANNEL, MESSAGE_CONTENT, guild joins and
//! leaves, forced closes and member chunks.

use bytes::Bytes;
use concord_core::bus::{BusMessage, ChannelAccess, CloseCodeWire, Dispatch};
use concord_core::gateway::{CloseCode, EventKind, Intents};
use concord_core::id::{GenericId, GuildId, RoleId, UserId};
use concord_core::model::application::FLAGS_ALL_PRIVILEGED;
use concord_core::model::{ChannelType, OverwriteType, PermissionOverwrite};
use concord_core::permissions::Permissions;
use serde_json::json;

use crate::common::{config, marker, message, Gateway};

#[tokio::test]
async fn dispatches_arrive_in_order_with_increasing_sequence() {
    let gw = Gateway::start(config()).await;
    let (owner, token) = gw.user("owner").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    let (mut client, _) = gw
        .identified(&token, Intents::GUILDS | Intents::GUILD_MESSAGES)
        .await;
    assert_eq!(client.dispatch().await["t"], "GUILD_CREATE");
    for i in 0..5 {
        gw.publish(message(guild, channel, &format!("hello {i}"), None))
            .await;
    }
    for i in 0..5u64 {
        let event = client.dispatch().await;
        assert_eq!(event["t"], "MESSAGE_CREATE");
        assert_eq!(event["s"], 3 + i);
        assert_eq!(event["d"]["channel_id"], channel.to_string());
    }
}

#[tokio::test]
async fn intents_decide_who_gets_an_event() {
    let gw = Gateway::start(config()).await;
    let (owner, owner_token) = gw.user("owner").await;
    let (member, member_token) = gw.user("member").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    gw.join(guild, member).await;
    let (mut with, _) = gw
        .identified(&owner_token, Intents::GUILDS | Intents::GUILD_MESSAGES)
        .await;
    let (mut without, _) = gw.identified(&member_token, Intents::GUILDS).await;
    with.dispatch().await;
    without.dispatch().await;

    gw.publish(message(guild, channel, "for GUILD_MESSAGES only", None))
        .await;
    gw.publish(marker(guild, "after")).await;
    assert_eq!(with.dispatch().await["t"], "MESSAGE_CREATE");
    assert_eq!(with.dispatch().await["d"]["name"], "after");
    let next = without.dispatch().await;
    assert_eq!(
        (next["t"].as_str(), next["d"]["name"].as_str()),
        (Some("GUILD_UPDATE"), Some("after"))
    );
    assert_eq!(
        next["s"], 3,
        "no sequence number was spent on the filtered event"
    );
}

fn private_channel(
    guild: GuildId,
    owner: UserId,
    allowed_role: RoleId,
    allowed_member: UserId,
) -> (Vec<PermissionOverwrite>, ChannelAccess) {
    let everyone: GenericId = guild.cast();
    let overwrites = vec![
        PermissionOverwrite {
            allow: Permissions::empty(),
            deny: Permissions::VIEW_CHANNEL,
            id: everyone,
            kind: OverwriteType::Role,
        },
        PermissionOverwrite {
            allow: Permissions::VIEW_CHANNEL,
            deny: Permissions::empty(),
            id: allowed_role.cast(),
            kind: OverwriteType::Role,
        },
        PermissionOverwrite {
            allow: Permissions::VIEW_CHANNEL,
            deny: Permissions::empty(),
            id: allowed_member.cast(),
            kind: OverwriteType::Member,
        },
    ];
    let access = ChannelAccess {
        kind: ChannelType::GuildText,
        owner_id: owner,
        overwrites: overwrites.clone(),
        required: Permissions::VIEW_CHANNEL,
        roles: vec![
            (guild.cast(), Permissions::DEFAULT_EVERYONE),
            (allowed_role, Permissions::empty()),
        ],
    };
    (overwrites, access)
}

#[tokio::test]
async fn sessions_never_see_channels_they_cannot_view() {
    let gw = Gateway::start(config()).await;
    let (owner, owner_token) = gw.user("owner").await;
    let (insider, insider_token) = gw.user("insider").await;
    let (outsider, outsider_token) = gw.user("outsider").await;
    let role: RoleId = gw.ids.next();
    let (guild, _) = gw.guild(owner, Vec::new()).await;
    let (overwrites, access) = private_channel(guild, owner, role, insider);
    let channel = gw.channel(guild, overwrites).await;
    gw.join(guild, insider).await;
    gw.join(guild, outsider).await;
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let (mut owner_client, _) = gw.identified(&owner_token, intents).await;
    let (mut insider_client, _) = gw.identified(&insider_token, intents).await;
    let (mut outsider_client, _) = gw.identified(&outsider_token, intents).await;
    for client in [&mut owner_client, &mut insider_client, &mut outsider_client] {
        client.dispatch().await;
    }

    gw.publish(message(guild, channel, "secret", Some(access.clone())))
        .await;
    gw.publish(marker(guild, "after secret")).await;
    assert_eq!(
        owner_client.dispatch().await["d"]["content"],
        "secret",
        "owners see everything"
    );
    assert_eq!(
        insider_client.dispatch().await["d"]["content"],
        "secret",
        "member overwrite allows"
    );
    assert_eq!(
        outsider_client.dispatch().await["d"]["name"],
        "after secret",
        "denied: nothing before the marker"
    );
    owner_client.dispatch().await;
    insider_client.dispatch().await;

    // A GUILD_MEMBER_UPDATE giving the outsider the allowed role updates the session's roles.
    let update = Dispatch {
        access: None,
        content_exempt: Vec::new(),
        data: Bytes::from(
            json!({"guild_id": guild, "roles": [role], "user": {"id": outsider, "username": "x"}})
                .to_string(),
        ),
        data_without_content: None,
        guild_id: Some(guild),
        kind: EventKind::GuildMemberUpdate,
        user_id: None,
    };
    gw.publish(update).await;
    assert_eq!(
        outsider_client.dispatch().await["t"],
        "GUILD_MEMBER_UPDATE",
        "own member updates need no GUILD_MEMBERS"
    );
    gw.publish(message(guild, channel, "now visible", Some(access)))
        .await;
    assert_eq!(
        outsider_client.dispatch().await["d"]["content"],
        "now visible"
    );
}

#[tokio::test]
async fn content_is_stripped_without_the_intent_unless_exempt() {
    let gw = Gateway::start(config()).await;
    let (owner, owner_token) = gw.user("owner").await;
    let (bot, bot_token) = gw.bot("reader", FLAGS_ALL_PRIVILEGED).await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    gw.join(guild, bot).await;
    let (mut with, _) = gw
        .identified(
            &owner_token,
            Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
        )
        .await;
    let (mut without, _) = gw
        .identified(&bot_token, Intents::GUILDS | Intents::GUILD_MESSAGES)
        .await;
    with.dispatch().await;
    without.dispatch().await;

    gw.publish(message(guild, channel, "the words", None)).await;
    assert_eq!(with.dispatch().await["d"]["content"], "the words");
    assert_eq!(without.dispatch().await["d"]["content"], "");

    let mut mentioned = message(guild, channel, "hey bot", None);
    mentioned.content_exempt = vec![bot];
    gw.publish(mentioned).await;
    assert_eq!(with.dispatch().await["d"]["content"], "hey bot");
    assert_eq!(
        without.dispatch().await["d"]["content"],
        "hey bot",
        "mentioned users see content"
    );
}

#[tokio::test]
async fn joining_a_guild_sends_guild_create_then_its_events_and_leaving_stops_them() {
    let gw = Gateway::start(config()).await;
    let (owner, _) = gw.user("owner").await;
    let (user, token) = gw.user("joiner").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    let (mut client, ready) = gw
        .identified(&token, Intents::GUILDS | Intents::GUILD_MESSAGES)
        .await;
    assert_eq!(ready["d"]["guilds"], json!([]));

    gw.join(guild, user).await;
    gw.to_user_shard(
        user,
        BusMessage::GuildJoined {
            guild_id: guild,
            user_id: user,
        },
    )
    .await;
    let create = client.dispatch().await;
    assert_eq!(
        (create["t"].as_str(), create["s"].as_u64()),
        (Some("GUILD_CREATE"), Some(2))
    );
    assert_eq!(create["d"]["id"], guild.to_string());
    assert_eq!(create["d"]["unavailable"], false);
    assert!(create["d"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user"]["id"] == user.to_string()));
    // Publishing finds this shard through the interest the join registered.
    gw.publish(message(guild, channel, "welcome", None)).await;
    let event = client.dispatch().await;
    assert_eq!(
        (event["t"].as_str(), event["s"].as_u64()),
        (Some("MESSAGE_CREATE"), Some(3))
    );

    gw.to_user_shard(
        user,
        BusMessage::GuildLeft {
            guild_id: guild,
            user_id: user,
        },
    )
    .await;
    // Even a publish that reaches the shard (stale interest) no longer reaches the session.
    let stale = BusMessage::Dispatch(std::sync::Arc::new(message(
        guild, channel, "too late", None,
    )));
    gw.to_user_shard(user, stale).await;
    // A user-targeted event on the user's shard orders after the leave.
    let goodbye = Dispatch {
        user_id: Some(user),
        ..marker(guild, "goodbye")
    };
    gw.to_user_shard(user, BusMessage::Dispatch(std::sync::Arc::new(goodbye)))
        .await;
    assert_eq!(client.dispatch().await["d"]["name"], "goodbye");
    assert!(
        gw.interested(guild).await.is_empty(),
        "interest released with the last session"
    );
}

#[tokio::test]
async fn closing_a_users_sessions_sends_the_code_and_ends_them() {
    let gw = Gateway::start(config()).await;
    let (user, token) = gw.user("reset").await;
    let (mut first, ready) = gw.identified(&token, Intents::GUILDS).await;
    let (mut second, _) = gw.identified(&token, Intents::GUILDS).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    let code = CloseCodeWire::from(CloseCode::AuthenticationFailed);
    gw.to_user_shard(
        user,
        BusMessage::CloseUserSessions {
            code,
            user_id: user,
        },
    )
    .await;
    assert_eq!(first.close_code().await, Some(4004));
    assert_eq!(second.close_code().await, Some(4004));
    let mut again = gw.connect("v=10").await;
    again.hello().await;
    again
        .send(crate::common::resume(&token, &session_id, 1))
        .await;
    assert_eq!(
        again.payload().await,
        json!({"op": 9, "d": false, "s": null, "t": null})
    );
}

#[tokio::test]
async fn request_guild_members_answers_with_chunks() {
    let gw = Gateway::start(config()).await;
    let (owner, token) = gw.user("alpha").await;
    let (guild, _) = gw.guild(owner, Vec::new()).await;
    let mut others = Vec::new();
    for name in ["bravo", "brisk", "charlie"] {
        let (id, _) = gw.user(name).await;
        gw.join(guild, id).await;
        others.push(id);
    }
    let (mut client, _) = gw
        .identified(&token, Intents::GUILDS | Intents::GUILD_MEMBERS)
        .await;
    client.dispatch().await;

    client.send(json!({"op": 8, "d": {"guild_id": guild.get(), "query": "", "limit": 0, "nonce": "all"}})).await;
    let chunk = client.dispatch().await;
    assert_eq!(chunk["t"], "GUILD_MEMBERS_CHUNK");
    let d = &chunk["d"];
    assert_eq!(
        (d["chunk_index"].as_u64(), d["chunk_count"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(d["nonce"], "all");
    assert_eq!(d["guild_id"], guild.to_string());
    assert_eq!(d["members"].as_array().unwrap().len(), 4);

    client
        .send(json!({"op": 8, "d": {"guild_id": guild.to_string(), "query": "BR", "limit": 10}}))
        .await;
    let d = client.dispatch().await["d"].clone();
    let names: Vec<_> = d["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("br")));
    assert!(d.get("nonce").is_none());

    let stranger: UserId = gw.ids.next();
    client.send(json!({"op": 8, "d": {"guild_id": guild.to_string(), "user_ids": [others[2], stranger], "nonce": "ids"}})).await;
    let d = client.dispatch().await["d"].clone();
    assert_eq!(d["members"][0]["user"]["id"], others[2].to_string());
    assert_eq!(d["not_found"], json!([stranger.to_string()]));
    assert_eq!(d["nonce"], "ids");
}

#[tokio::test]
async fn a_join_announced_for_a_guild_the_session_already_has_sends_no_second_guild_create() {
    let gw = Gateway::start(config()).await;
    let (user, token) = gw.user("member").await;
    let (guild, _) = gw.guild(user, Vec::new()).await;
    let (mut client, ready) = gw.identified(&token, Intents::GUILDS).await;
    assert_eq!(ready["d"]["guilds"][0]["id"], guild.to_string());
    assert_eq!(client.dispatch().await["t"], "GUILD_CREATE");

    // The join was committed before Identify listed the guilds, but announced after.
    gw.to_user_shard(
        user,
        BusMessage::GuildJoined {
            guild_id: guild,
            user_id: user,
        },
    )
    .await;
    gw.publish(marker(guild, "after")).await;
    let next = client.dispatch().await;
    assert_eq!(
        (next["t"].as_str(), next["s"].as_u64()),
        (Some("GUILD_UPDATE"), Some(3)),
        "{next}"
    );
    assert_eq!(gw.interested(guild).await.len(), 1);
}

#[tokio::test]
async fn a_join_for_a_guild_the_user_is_not_in_leaves_no_subscription() {
    let gw = Gateway::start(config()).await;
    let (owner, _) = gw.user("owner").await;
    let (user, token) = gw.user("outsider").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    let (mut client, _) = gw
        .identified(&token, Intents::GUILDS | Intents::GUILD_MESSAGES)
        .await;

    // Announced, but the membership is gone by the time the shard loads the guild.
    gw.to_user_shard(
        user,
        BusMessage::GuildJoined {
            guild_id: guild,
            user_id: user,
        },
    )
    .await;
    // Ordered after the join on the user's shard: it must not reach a non-member.
    let stray = BusMessage::Dispatch(std::sync::Arc::new(message(
        guild,
        channel,
        "not for you",
        None,
    )));
    gw.to_user_shard(user, stray).await;
    let own = Dispatch {
        user_id: Some(user),
        ..marker(guild, "own")
    };
    gw.to_user_shard(user, BusMessage::Dispatch(std::sync::Arc::new(own)))
        .await;
    let next = client.dispatch().await;
    assert_eq!(next["d"]["name"], "own", "{next}");
    assert_eq!(next["s"], 2);
    assert!(
        gw.interested(guild).await.is_empty(),
        "no interest left behind"
    );
}

#[tokio::test]
async fn a_join_announced_while_identify_is_between_listing_and_registering_is_not_lost() {
    let gate = std::sync::Arc::new(tokio::sync::RwLock::new(()));
    let gw = {
        let gate = gate.clone();
        crate::common::Gateway::start_with(
            &concord_store_sql::test_util::scratch_sqlite_url(),
            config(),
            move |inner| std::sync::Arc::new(crate::common::GatedTopology { inner, gate }),
        )
        .await
    };
    let (other, other_token) = gw.user("other").await;
    let (user, token) = loop {
        let (user, token) = gw.user("joiner").await;
        if gw.user_shard(user) == gw.user_shard(other) {
            break (user, token);
        }
    };
    let (guild, _) = gw.guild(other, Vec::new()).await;
    let (other_client, _) = gw.identified(&other_token, Intents::GUILDS).await;

    // Hold the shard's membership changes: the other session's end stops inside them.
    let held = gate.write().await;
    let closing = tokio::spawn(other_client.close(1000));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let mut client = gw.connect("v=10&encoding=json").await;
    client.hello().await;
    client
        .send(crate::common::identify(&token, Intents::GUILDS))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The join lands while that Identify waits to register.
    gw.join(guild, user).await;
    gw.to_user_shard(
        user,
        BusMessage::GuildJoined {
            guild_id: guild,
            user_id: user,
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(held);
    closing.await.unwrap();

    let ready = client.dispatch().await;
    assert_eq!(ready["t"], "READY");
    let create = client.dispatch().await;
    assert_eq!(
        (create["t"].as_str(), create["d"]["id"].as_str()),
        (Some("GUILD_CREATE"), Some(guild.to_string().as_str())),
        "{create}"
    );
    gw.publish(marker(guild, "after")).await;
    assert_eq!(client.dispatch().await["d"]["name"], "after");
}

#[tokio::test]
async fn a_join_holds_interest_until_handled_and_then_releases_it() {
    let gw = Gateway::start(config()).await;
    let (owner, _) = gw.user("owner").await;
    let (user, _token) = gw.user("offline").await;
    let (guild, _) = gw.guild(owner, Vec::new()).await;
    gw.join(guild, user).await;
    // The user has no session: once the shard has handled the join, nothing keeps interest.
    gw.to_user_shard(
        user,
        BusMessage::GuildJoined {
            guild_id: guild,
            user_id: user,
        },
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gw.interested(guild).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the announcement's interest was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
