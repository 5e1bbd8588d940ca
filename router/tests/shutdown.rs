//! Router shutdown: op 7 to every connection, then a reconnectable close; sessions survive.

use std::time::Duration;

use concord_core::gateway::Intents;
use concord_gateway_shard::ShardConfig;
use serde_json::json;

use crate::common::{config, resume, Gateway, Received};

#[tokio::test]
async fn shutdown_asks_clients_to_reconnect_then_closes_4000() {
    let gw = Gateway::start(ShardConfig {
        reconnect_grace: Duration::from_millis(300),
        ..config()
    })
    .await;
    let (_, token) = gw.user("drained").await;
    let (mut client, ready) = gw.identified(&token, Intents::GUILDS).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    let mut idle = gw.connect("v=10").await;
    idle.hello().await;
    assert_eq!(gw.router.connection_count(), 2);

    let router = gw.router.clone();
    let draining = tokio::spawn(async move { router.shutdown().await });
    assert_eq!(
        client.payload().await,
        json!({"op": 7, "d": null, "s": null, "t": null})
    );
    assert_eq!(idle.payload().await["op"], 7);
    assert_eq!(client.close_code().await, Some(4000));
    assert_eq!(idle.close_code().await, Some(4000));
    tokio::time::timeout(Duration::from_secs(5), draining)
        .await
        .expect("shutdown finished")
        .unwrap();
    assert_eq!(gw.router.connection_count(), 0);

    // New upgrades are refused while draining.
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/?v=10", gw.addr)).await;
    assert!(refused.is_err());

    // The session itself survived and can be resumed through another router over the same shards.
    let other = gw.another_router().await;
    let mut resumed = crate::common::Client::connect(&other).await;
    resumed.hello().await;
    resumed.send(resume(&token, &session_id, 1)).await;
    match resumed.next().await {
        Received::Payload(p) => assert_eq!(
            (p["t"].as_str(), p["s"].as_u64()),
            (Some("RESUMED"), Some(2))
        ),
        Received::Closed(code) => panic!("closed with {code:?}"),
    }
}
