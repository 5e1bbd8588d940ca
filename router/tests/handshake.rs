//! HELLO, heartbeats, Identify → READY → GUILD_CREATE, and every close code of the handshake.

use std::time::Duration;

use concord_core::gateway::Intents;
use concord_core::model::application::FLAGS_ALL_PRIVILEGED;
use concord_core::token::TokenKey;
use concord_gateway_shard::ShardConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{config, identify, Gateway, RESUME_URL};

#[tokio::test]
async fn hello_first_and_heartbeats_are_acked_before_identify() {
    let gw = Gateway::start(ShardConfig {
        heartbeat_interval: Duration::from_millis(41_250),
        ..config()
    })
    .await;
    let mut client = gw.connect("v=10&encoding=json").await;
    let hello = client.hello().await;
    assert_eq!(
        hello,
        json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null})
    );
    client.send(json!({"op": 1, "d": null})).await;
    assert_eq!(
        client.payload().await,
        json!({"op": 11, "d": null, "s": null, "t": null})
    );
    client.send(json!({"op": 1, "d": 5})).await;
    assert_eq!(client.payload().await["op"], 11);
    // Path and query do not matter (twilight appends `/`, serenity sends only `v`).
    let mut other =
        crate::common::Client::connect(&format!("ws://{}/any/path/?v=10", gw.addr)).await;
    other.hello().await;
}

#[tokio::test]
async fn identify_sends_ready_then_one_guild_create_per_guild() {
    let gw = Gateway::start(config()).await;
    let (owner, _) = gw.user("owner").await;
    let (bot, token) = gw.bot("helper", FLAGS_ALL_PRIVILEGED).await;
    let (g1, c1) = gw.guild(owner, Vec::new()).await;
    let (g2, _) = gw.guild(owner, Vec::new()).await;
    gw.join(g1, bot).await;
    gw.join(g2, bot).await;

    let mut client = gw.connect("v=10&encoding=json").await;
    client.hello().await;
    let mut payload = identify(&token, Intents::GUILDS | Intents::GUILD_MESSAGES);
    payload["d"]["shard"] = json!([0, 1]);
    client.send(payload).await;
    let ready = client.dispatch().await;
    assert_eq!(
        (ready["t"].as_str(), ready["s"].as_u64()),
        (Some("READY"), Some(1))
    );
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["user"]["id"], bot.to_string());
    assert_eq!(d["user"]["bot"], true);
    for key in [
        "username",
        "discriminator",
        "mfa_enabled",
        "flags",
        "verified",
        "locale",
        "public_flags",
    ] {
        assert!(
            d["user"].get(key).is_some(),
            "READY.user.{key} missing: {d}"
        );
    }
    let session_id = d["session_id"].as_str().unwrap();
    assert_eq!(session_id.len(), 32);
    assert!(session_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(d["resume_gateway_url"], RESUME_URL);
    assert_eq!(
        d["application"],
        json!({"id": bot.to_string(), "flags": FLAGS_ALL_PRIVILEGED})
    );
    assert_eq!(d["shard"], json!([0, 1]));
    assert_eq!(d["private_channels"], json!([]));
    assert_eq!(d["relationships"], json!([]));
    assert_eq!(d["user_settings"], json!({}));
    assert_eq!(d["session_type"], "normal");
    assert_eq!(d["_trace"], json!([]));
    let mut listed: Vec<_> = d["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut expected = vec![g1.to_string(), g2.to_string()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(d["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["unavailable"] == true));

    let mut created = Vec::new();
    for seq in [2, 3] {
        let create = client.dispatch().await;
        assert_eq!(
            (create["t"].as_str(), create["s"].as_u64()),
            (Some("GUILD_CREATE"), Some(seq))
        );
        let d = &create["d"];
        assert_eq!(d["unavailable"], false);
        assert_eq!(d["member_count"], 2);
        assert_eq!(d["large"], false);
        assert!(d["joined_at"].is_string());
        for list in [
            "threads",
            "presences",
            "voice_states",
            "stage_instances",
            "guild_scheduled_events",
            "soundboard_sounds",
            "emojis",
            "stickers",
            "roles",
            "features",
        ] {
            assert!(d[list].is_array(), "GUILD_CREATE.{list} missing: {d}");
        }
        assert!(d["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["user"]["id"] == bot.to_string()));
        assert!(d["owner_id"].is_string() && d["name"] == "Test Guild");
        created.push(d["id"].as_str().unwrap().to_owned());
        if d["id"] == g1.to_string() {
            assert_eq!(d["channels"][0]["id"], c1.to_string());
            assert_eq!(d["channels"][0]["name"], "general");
        }
    }
    created.sort();
    assert_eq!(created, expected);
}

#[tokio::test]
async fn human_users_get_their_own_id_as_application_and_bot_prefixed_tokens_work() {
    let gw = Gateway::start(config()).await;
    let (user, token) = gw.user("human").await;
    let (_client, ready) = gw.identified(&format!("Bot {token}"), Intents::all()).await;
    assert_eq!(
        ready["d"]["application"],
        json!({"id": user.to_string(), "flags": 0})
    );
    assert_eq!(ready["d"]["guilds"], json!([]));
    assert!(
        ready["d"].get("shard").is_none(),
        "shard is only echoed when sent"
    );
}

async fn closed_with(gw: &Gateway, query: &str, send: Vec<Message>) -> Option<u16> {
    let mut client = gw.connect(query).await;
    client.hello().await;
    for message in send {
        client.send_raw(message).await;
    }
    client.close_code().await
}

fn text(value: serde_json::Value) -> Message {
    Message::Text(value.to_string().into())
}

#[tokio::test]
async fn bad_tokens_close_4004() {
    let gw = Gateway::start(config()).await;
    let (user, _) = gw.user("victim").await;
    let forged = TokenKey::new(&[1u8; 32]).mint(user, 7);
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(identify(&forged, Intents::GUILDS))]).await,
        Some(4004)
    );
    // Correctly signed but never issued (or revoked): not live in the store.
    let unissued = gw.tokens.mint(user, 99);
    assert_eq!(
        closed_with(
            &gw,
            "v=10",
            vec![text(identify(&unissued, Intents::GUILDS))]
        )
        .await,
        Some(4004)
    );
    assert_eq!(
        closed_with(
            &gw,
            "v=10",
            vec![text(identify("garbage", Intents::GUILDS))]
        )
        .await,
        Some(4004)
    );
}

#[tokio::test]
async fn malformed_payloads_close_4002() {
    let gw = Gateway::start(config()).await;
    let oversized = json!({"op": 1, "d": null, "pad": "x".repeat(5000)});
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(oversized)]).await,
        Some(4002)
    );
    assert_eq!(
        closed_with(&gw, "v=10", vec![Message::Text("{\"op\":".into())]).await,
        Some(4002)
    );
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(json!({"op": 2, "d": {"token": 5}}))]).await,
        Some(4002)
    );
    // Exactly at the limit is fine.
    let mut client = gw.connect("v=10").await;
    client.hello().await;
    let base = json!({"op": 1, "d": null, "pad": ""}).to_string().len();
    let at_limit = json!({"op": 1, "d": null, "pad": "y".repeat(4096 - base)});
    assert_eq!(at_limit.to_string().len(), 4096);
    client.send(at_limit).await;
    assert_eq!(client.payload().await["op"], 11);
}

#[tokio::test]
async fn protocol_violations_close_with_their_codes() {
    let gw = Gateway::start(config()).await;
    let (_, token) = gw.user("someone").await;
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(json!({"op": 99, "d": null}))]).await,
        Some(4001)
    );
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(json!({"op": 5, "d": null}))]).await,
        Some(4001)
    );
    let presence =
        json!({"op": 3, "d": {"since": null, "activities": [], "status": "online", "afk": false}});
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(presence.clone())]).await,
        Some(4003)
    );
    let members = json!({"op": 8, "d": {"guild_id": "1", "query": "", "limit": 0}});
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(members)]).await,
        Some(4003)
    );
    let twice = vec![
        text(identify(&token, Intents::GUILDS)),
        text(identify(&token, Intents::GUILDS)),
    ];
    assert_eq!(closed_with(&gw, "v=10", twice).await, Some(4005));
    let mut bad_shard = identify(&token, Intents::GUILDS);
    bad_shard["d"]["shard"] = json!([1, 1]);
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(bad_shard)]).await,
        Some(4010)
    );
    let mut no_shards = identify(&token, Intents::GUILDS);
    no_shards["d"]["shard"] = json!([0, 0]);
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(no_shards)]).await,
        Some(4010)
    );
    let undefined = identify(&token, Intents::from_bits_retain(1 << 17));
    assert_eq!(
        closed_with(&gw, "v=10", vec![text(undefined)]).await,
        Some(4013)
    );
    assert_eq!(
        closed_with(&gw, "v=9&encoding=json", Vec::new()).await,
        Some(4012)
    );

    // Ops 3, 4, 31 and 43 are accepted once identified.
    let (mut client, _) = gw.identified(&token, Intents::GUILDS).await;
    client.send(presence).await;
    client.send(json!({"op": 4, "d": {"guild_id": "1", "channel_id": null, "self_mute": false, "self_deaf": false}})).await;
    client.send(json!({"op": 31, "d": {"guild_ids": []}})).await;
    client
        .send(json!({"op": 43, "d": {"guild_id": "1", "fields": ["status"]}}))
        .await;
    client.send(json!({"op": 1, "d": 1})).await;
    assert_eq!(
        client.payload().await["op"],
        11,
        "the connection survived the ignored ops"
    );
}

#[tokio::test]
async fn privileged_intents_need_the_application_flags() {
    let gw = Gateway::start(config()).await;
    let (_, plain_bot) = gw.bot("plain", 0).await;
    for intent in [
        Intents::GUILD_MEMBERS,
        Intents::GUILD_PRESENCES,
        Intents::MESSAGE_CONTENT,
    ] {
        let payload = identify(&plain_bot, Intents::GUILDS | intent);
        assert_eq!(
            closed_with(&gw, "v=10", vec![text(payload)]).await,
            Some(4014),
            "{intent:?}"
        );
    }
    let (_, trusted_bot) = gw.bot("trusted", FLAGS_ALL_PRIVILEGED).await;
    gw.identified(&trusted_bot, Intents::all()).await;
}

#[tokio::test]
async fn more_than_120_payloads_a_minute_close_4008() {
    let gw = Gateway::start(config()).await;
    let mut client = gw.connect("v=10").await;
    client.hello().await;
    for _ in 0..121 {
        client.send(json!({"op": 1, "d": null})).await;
    }
    let mut acks = 0;
    let code = loop {
        match client.next().await {
            crate::common::Received::Payload(p) => {
                assert_eq!(p["op"], 11);
                acks += 1;
            }
            crate::common::Received::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(4008));
    assert_eq!(acks, 120);
}

#[tokio::test]
async fn silence_past_the_heartbeat_timeout_closes_4009() {
    // Interval 400 ms, so the timeout is 600 ms.
    let config = ShardConfig {
        heartbeat_interval: Duration::from_millis(400),
        ..config()
    };
    let gw = Gateway::start(config).await;
    let mut client = gw.connect("v=10").await;
    let hello = client.hello().await;
    assert_eq!(hello["d"]["heartbeat_interval"], 400);
    let started = tokio::time::Instant::now();
    // Heartbeats keep it open well past the timeout...
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        client.send(json!({"op": 1, "d": null})).await;
        assert_eq!(client.payload().await["op"], 11);
    }
    assert!(started.elapsed() > Duration::from_millis(1200));
    // ...and silence closes it, resumably.
    let silent = tokio::time::Instant::now();
    assert_eq!(client.close_code().await, Some(4009));
    let waited = silent.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}
