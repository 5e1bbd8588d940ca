//! Transport details: zlib-stream and zstd-stream decoded by real decompressors across
//! messages, BINARY client frames, fragmented client messages and pings.

use concord_core::gateway::Intents;
use concord_gateway_shard::ShardConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{config, identify, message, Gateway};

async fn compressed_session(query: &str, config: ShardConfig) {
    let gw = Gateway::start(config).await;
    let (owner, token) = gw.user("squeeze").await;
    let (guild, channel) = gw.guild(owner, Vec::new()).await;
    let mut client = gw.connect(query).await;
    client.hello().await;
    client.send(json!({"op": 1, "d": null})).await;
    assert_eq!(client.payload().await["op"], 11);
    let ready = client
        .identify(
            &token,
            Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
        )
        .await;
    assert_eq!(ready["d"]["user"]["id"], owner.to_string());
    assert_eq!(client.dispatch().await["t"], "GUILD_CREATE");
    // Enough repetitive payloads that later messages lean on the shared window.
    for i in 0..20 {
        gw.publish(message(
            guild,
            channel,
            &format!("compressed message number {i} {}", "lorem ipsum ".repeat(i)),
            None,
        ))
        .await;
    }
    for i in 0..20u64 {
        let event = client.dispatch().await;
        assert_eq!(event["s"], 3 + i);
        assert!(event["d"]["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("compressed message number {i} ")));
    }
    assert_eq!(
        client.text_messages, 0,
        "compressed connections send BINARY only"
    );
    // HELLO, ACK, READY, GUILD_CREATE and the twenty dispatches.
    assert_eq!(client.binary_messages, 24);
}

#[tokio::test]
async fn zlib_stream_is_one_context_with_sync_flushes() {
    compressed_session("v=10&encoding=json&compress=zlib-stream", config()).await;
}

#[tokio::test]
async fn zlib_stream_with_a_small_window() {
    compressed_session(
        "v=10&encoding=json&compress=zlib-stream",
        ShardConfig {
            zlib_window_bits: 9,
            ..config()
        },
    )
    .await;
}

#[tokio::test]
async fn zstd_stream_is_one_frame_flushed_per_message() {
    compressed_session("v=10&compress=zstd-stream", config()).await;
}

#[tokio::test]
async fn zstd_stream_with_a_small_window() {
    compressed_session(
        "v=10&compress=zstd-stream",
        ShardConfig {
            zstd_window_log: 10,
            ..config()
        },
    )
    .await;
}

#[tokio::test]
async fn uncompressed_connections_get_text_and_accept_binary_json() {
    let gw = Gateway::start(config()).await;
    let (_, token) = gw.user("hikari").await;
    let mut client = gw.connect("v=10&encoding=json").await;
    client.hello().await;
    // hikari sends plain JSON in BINARY frames.
    client
        .send_raw(Message::Binary(
            identify(&token, Intents::GUILDS)
                .to_string()
                .into_bytes()
                .into(),
        ))
        .await;
    assert_eq!(client.dispatch().await["t"], "READY");
    assert_eq!(client.binary_messages, 0);
    assert!(client.text_messages >= 2);
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_and_pings_answered() {
    let gw = Gateway::start(config()).await;
    let (_, token) = gw.user("fragments").await;
    let mut client = gw.connect("v=10").await;
    client.hello().await;
    client
        .send_raw(Message::Ping(b"are you there".to_vec().into()))
        .await;
    client
        .send_fragmented(&json!({"op": 1, "d": null}).to_string())
        .await;
    assert_eq!(client.payload().await["op"], 11);
    client
        .send_fragmented(&identify(&token, Intents::GUILDS).to_string())
        .await;
    assert_eq!(client.dispatch().await["t"], "READY");
    // Fragments adding up to more than 4096 bytes are still too large.
    let big = json!({"op": 1, "d": null, "pad": "z".repeat(6000)}).to_string();
    client.send_fragmented(&big).await;
    assert_eq!(client.close_code().await, Some(4002));
}
