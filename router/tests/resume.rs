//! Resume: replay after a drop or a reconnectable close, takeover of a live session, and the
//! cases answered with op 9.

use std::time::Duration;

use concord_core::gateway::Intents;
use concord_gateway_shard::ShardConfig;
use serde_json::{json, Value};

use crate::common::{config, message, resume, Client, Gateway};

const INVALID: fn() -> Value = || json!({"op": 9, "d": false, "s": null, "t": null});

/// Identifies a member of a fresh guild and reads READY (1) and GUILD_CREATE (2).
async fn session(
    gw: &Gateway,
) -> (
    Client,
    String,
    String,
    concord_core::id::GuildId,
    concord_core::id::ChannelId,
) {
    let (owner, token) = gw.user("resumer").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let (mut client, ready) = gw.identified(&token, intents).await;
    assert_eq!(client.dispatch().await["s"], 2);
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    (client, token, session_id, guild, channel)
}

/// Resumes and checks that exactly `contents` are replayed with sequences from `first_seq`,
/// then RESUMED; returns the client.
async fn resume_and_expect(
    gw: &Gateway,
    token: &str,
    session_id: &str,
    seq: u64,
    contents: &[String],
) -> Client {
    let mut client = gw.connect("v=10&encoding=json").await;
    client.hello().await;
    client.send(resume(token, session_id, seq)).await;
    for (i, content) in contents.iter().enumerate() {
        let event = client.dispatch().await;
        assert_eq!(event["t"], "MESSAGE_CREATE", "{event}");
        assert_eq!(
            event["s"],
            seq + 1 + i as u64,
            "no gap, no duplicate: {event}"
        );
        assert_eq!(event["d"]["content"].as_str(), Some(content.as_str()));
    }
    let resumed = client.dispatch().await;
    assert_eq!(resumed["t"], "RESUMED");
    assert_eq!(resumed["s"], seq + 1 + contents.len() as u64);
    client
}

/// Lets the server notice a dropped socket. Events published before or after that moment must
/// both be replayed, so the tests do not depend on it; this only exercises the usual order.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn resume_after_a_drop_replays_exactly_the_missed_dispatches() {
    let gw = Gateway::start(config()).await;
    let (client, token, session_id, guild, channel) = session(&gw).await;
    client.drop_connection();
    let contents: Vec<String> = (0..7).map(|i| format!("missed {i}")).collect();
    for content in &contents {
        gw.publish(message(guild, channel, content, None)).await;
    }
    settle().await;
    let mut client = resume_and_expect(&gw, &token, &session_id, 2, &contents).await;
    // Live delivery continues on the new socket.
    gw.publish(message(guild, channel, "live", None)).await;
    let live = client.dispatch().await;
    assert_eq!(
        (live["s"].as_u64(), live["d"]["content"].as_str()),
        (Some(11), Some("live"))
    );
}

#[tokio::test]
async fn resume_from_an_older_seq_replays_from_there() {
    let gw = Gateway::start(config()).await;
    let (mut client, token, session_id, guild, channel) = session(&gw).await;
    let contents: Vec<String> = (0..4).map(|i| format!("seen {i}")).collect();
    for content in &contents {
        gw.publish(message(guild, channel, content, None)).await;
    }
    for _ in &contents {
        client.dispatch().await;
    }
    client.close(4000).await;
    // The client saw everything but claims it only got up to seq 3.
    resume_and_expect(&gw, &token, &session_id, 3, &contents[1..]).await;
}

#[tokio::test]
async fn resume_takes_over_a_session_whose_socket_is_still_open() {
    let gw = Gateway::start(config()).await;
    let (mut old, token, session_id, guild, channel) = session(&gw).await;
    gw.publish(message(guild, channel, "one", None)).await;
    assert_eq!(old.dispatch().await["s"], 3);
    let mut new = resume_and_expect(&gw, &token, &session_id, 2, &["one".to_owned()]).await;
    assert_eq!(old.close_code().await, Some(4000));
    gw.publish(message(guild, channel, "two", None)).await;
    assert_eq!(new.dispatch().await["s"], 5);
}

#[tokio::test]
async fn resume_before_hello_is_accepted() {
    let gw = Gateway::start(config()).await;
    let (client, token, session_id, _, _) = session(&gw).await;
    client.drop_connection();
    let mut client = gw.connect("v=10").await;
    // Serenity sends RESUME as soon as the socket opens.
    client
        .send(resume(&format!("Bot {token}"), &session_id, 2))
        .await;
    client.hello().await;
    let resumed = client.dispatch().await;
    assert_eq!(
        (resumed["t"].as_str(), resumed["s"].as_u64()),
        (Some("RESUMED"), Some(3))
    );
}

#[tokio::test]
async fn unresumable_sessions_get_op_9_false_and_may_identify_after() {
    let gw = Gateway::start(config()).await;
    let (client, token, session_id, _, _) = session(&gw).await;
    let (_, other_token) = gw.user("other").await;
    client.drop_connection();
    let mut probe = gw.connect("v=10").await;
    probe.hello().await;
    probe
        .send(resume(&token, "0123456789abcdef0123456789abcdef", 1))
        .await;
    assert_eq!(probe.payload().await, INVALID());
    probe.send(resume(&token, "not-a-session", 1)).await;
    assert_eq!(probe.payload().await, INVALID());
    probe.send(resume(&other_token, &session_id, 2)).await;
    assert_eq!(probe.payload().await, INVALID(), "another user's session");
    probe.send(resume(&token, &session_id, 99)).await;
    assert_eq!(probe.payload().await, INVALID(), "a sequence never sent");
    // The socket stays usable: identify on it.
    let ready = probe.identify(&token, Intents::GUILDS).await;
    assert_eq!(ready["s"], 1);
    // And the original session is still resumable.
    resume_and_expect(&gw, &token, &session_id, 2, &[]).await;
}

#[tokio::test]
async fn a_normal_client_close_ends_the_session() {
    let gw = Gateway::start(config()).await;
    let (client, token, session_id, _, _) = session(&gw).await;
    client.close(1000).await;
    let mut probe = gw.connect("v=10").await;
    probe.hello().await;
    probe.send(resume(&token, &session_id, 2)).await;
    assert_eq!(probe.payload().await, INVALID());
}

#[tokio::test]
async fn evicted_sequences_cannot_be_resumed() {
    let gw = Gateway::start(ShardConfig {
        replay_capacity: 4,
        ..config()
    })
    .await;
    let (client, token, session_id, guild, channel) = session(&gw).await;
    client.drop_connection();
    for i in 0..6 {
        gw.publish(message(guild, channel, &format!("{i}"), None))
            .await;
    }
    settle().await;
    let mut probe = gw.connect("v=10").await;
    probe.hello().await;
    probe.send(resume(&token, &session_id, 2)).await;
    assert_eq!(probe.payload().await, INVALID(), "seq 3..4 were evicted");
    drop(probe);
    // The last four are still there.
    resume_and_expect(
        &gw,
        &token,
        &session_id,
        4,
        &["2", "3", "4", "5"].map(str::to_owned),
    )
    .await;
}

#[tokio::test]
async fn sessions_expire_after_the_resume_window_and_survive_heartbeat_timeouts() {
    let config = ShardConfig {
        heartbeat_interval: Duration::from_millis(500),
        resume_window: Duration::from_secs(1),
        ..config()
    };
    let gw = Gateway::start(config).await;
    let (mut client, token, session_id, guild, channel) = session(&gw).await;
    assert_eq!(client.close_code().await, Some(4009));
    gw.publish(message(guild, channel, "during the gap", None))
        .await;
    let client =
        resume_and_expect(&gw, &token, &session_id, 2, &["during the gap".to_owned()]).await;
    client.drop_connection();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut probe = gw.connect("v=10").await;
    probe.hello().await;
    probe.send(resume(&token, &session_id, 4)).await;
    assert_eq!(probe.payload().await, INVALID(), "expired after the window");
    assert!(
        gw.interested(guild).await.is_empty(),
        "expiry released the interest"
    );
}

#[tokio::test]
async fn a_slow_consumer_is_closed_reconnectably_and_loses_nothing() {
    let config = ShardConfig {
        outgoing_capacity: 8,
        replay_capacity: 4096,
        ..config()
    };
    let gw = Gateway::start(config).await;
    let (mut client, token, session_id, guild, channel) = session(&gw).await;
    // Far more than the socket buffers hold while the client is not reading.
    let total = 1000u64;
    let filler = "x".repeat(32 * 1024);
    for i in 0..total {
        gw.publish(message(guild, channel, &format!("{i} {filler}"), None))
            .await;
    }
    let mut last = 2;
    let code = loop {
        match client.next().await {
            crate::common::Received::Payload(event) => {
                assert_eq!(event["s"], last + 1, "in order, no gap");
                last += 1;
            }
            crate::common::Received::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(4000), "slow consumers are told to resume");
    assert!(
        last < 2 + total,
        "the queue overflowed before everything was written"
    );
    let mut resumed = gw.connect("v=10").await;
    resumed.hello().await;
    resumed.send(resume(&token, &session_id, last)).await;
    loop {
        let event = resumed.dispatch().await;
        assert_eq!(event["s"], last + 1);
        last += 1;
        if event["t"] == "RESUMED" {
            break;
        }
        let content = event["d"]["content"].as_str().unwrap();
        assert!(
            content.starts_with(&format!("{} ", last - 3)),
            "event {last} carries message {}",
            last - 3
        );
    }
    assert_eq!(last, 2 + total + 1, "every message, then RESUMED");
}
