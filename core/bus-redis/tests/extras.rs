//! Snowflake node-id leases, rate windows and the identify gate.

use std::collections::HashSet;
use std::time::Duration;

use concord_bus_redis::{IdentifyGate, RateWindow, SnowflakeLease};

use crate::common::TestRedis;

conformance!(
    snowflake_leases_are_distinct,
    rate_window_counts,
    identify_gate
);

const LONG: Duration = Duration::from_secs(30);

async fn snowflake_leases_are_distinct(env: &TestRedis) {
    let leases = SnowflakeLease::new(env.redis.clone());
    let taken: Vec<(String, u16)> = futures_util::future::join_all((0..6).map(|i| {
        let leases = leases.clone();
        async move {
            let instance = format!("api-{i}");
            let id = leases.lease_node_id(&instance, LONG).await.unwrap();
            (instance, id)
        }
    }))
    .await;
    let ids: HashSet<u16> = taken.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 6, "{taken:?}");
    assert!(
        ids.iter().all(|id| *id < 6),
        "lowest free ids first: {taken:?}"
    );

    let (instance, id) = &taken[0];
    assert!(leases.renew(*id, instance, LONG).await.unwrap());
    assert!(!leases.renew(*id, "intruder", LONG).await.unwrap());
    assert_eq!(
        leases.lease_node_id(instance, LONG).await.unwrap(),
        *id,
        "its own id"
    );

    leases.release(*id, "intruder").await.unwrap();
    assert!(leases.renew(*id, instance, LONG).await.unwrap());
    leases.release(*id, instance).await.unwrap();
    assert!(!leases.renew(*id, instance, LONG).await.unwrap());
    assert_eq!(leases.lease_node_id("newcomer", LONG).await.unwrap(), *id);

    // An expired lease frees its id.
    let (other, other_id) = &taken[1];
    assert!(leases
        .renew(*other_id, other, Duration::from_millis(200))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!leases.renew(*other_id, other, LONG).await.unwrap());
}

async fn rate_window_counts(env: &TestRedis) {
    let window = Duration::from_millis(600);
    let rates = RateWindow::new(env.redis.clone());
    let mut used = Vec::new();
    for _ in 0..5 {
        let (n, reset) = rates.hit("global:1", 3, window).await.unwrap();
        assert!(reset <= window && reset > Duration::ZERO, "{reset:?}");
        used.push(n);
    }
    assert_eq!(used, vec![1, 2, 3, 4, 4], "counting stops past the limit");
    // Buckets are independent.
    assert_eq!(rates.hit("global:2", 3, window).await.unwrap().0, 1);
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    assert_eq!(
        rates.hit("global:1", 3, window).await.unwrap().0,
        1,
        "new window"
    );
}

async fn identify_gate(env: &TestRedis) {
    let ttl = Duration::from_millis(500);
    let gate = IdentifyGate::new(env.redis.clone());
    assert_eq!(gate.try_take(42, 0, ttl).await.unwrap(), None);
    let wait = gate
        .try_take(42, 0, ttl)
        .await
        .unwrap()
        .expect("bucket is taken");
    assert!(wait <= ttl && wait > Duration::ZERO, "{wait:?}");
    assert_eq!(
        gate.try_take(42, 1, ttl).await.unwrap(),
        None,
        "other bucket"
    );
    assert_eq!(gate.try_take(43, 0, ttl).await.unwrap(), None, "other app");
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    assert_eq!(gate.try_take(42, 0, ttl).await.unwrap(), None, "freed");
}
