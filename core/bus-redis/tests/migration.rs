//! Redis Cluster only: a slot log's hash slot moves to another master (and back) while a reader
//! is subscribed and a publisher publishes; redirects (ASK, then MOVED) must lose, repeat or
//! reorder nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use concord_bus_redis::keys::key_hash_slot;
use concord_bus_redis::RedisBus;
use concord_core::bus::EventBus;
use tokio::time::timeout;

use crate::common::{message, number, Backend, Master, TestRedis, PATIENCE};

/// A slot index no other test uses, so its tag is this test's alone.
const SLOT: u16 = 6;
const SLOTS: u16 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_moved_during_slot_migration() {
    let _alone = crate::common::exclusive().await;
    let Some(env) = TestRedis::connect(Backend::Cluster).await else {
        return;
    };
    let env = Arc::new(env);
    let bus = RedisBus::new(env.redis.clone(), SLOTS).unwrap();
    let key = bus.keys().log(SLOT);
    let hash_slot = key_hash_slot(key.as_bytes());
    let source = env.master_of(&key);
    let target = env
        .masters()
        .into_iter()
        .find(|m| m.id != source.id)
        .expect("a cluster of at least two masters");

    let mut sub = bus.subscribe_slot(SLOT).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let n = number(&sub.next_message().await);
            if tx.send(n).is_err() {
                return;
            }
        }
    });

    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (bus, published, stop) = (bus.clone(), published.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                bus.publish(&[SLOT], message(n)).await.unwrap();
                n += 1;
                published.store(n, Ordering::SeqCst);
                if n.is_multiple_of(10) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            n
        })
    };

    let wait_for = |count: u64| {
        let published = published.clone();
        async move {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            while published.load(Ordering::SeqCst) < count {
                assert!(tokio::time::Instant::now() < deadline, "publisher stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };

    wait_for(300).await;
    let there = migrate(&env, hash_slot, &source, &target).await;
    assert!(there > 0, "the log key moved");
    let moved_at = published.load(Ordering::SeqCst);
    assert_eq!(env.master_of(&key).id, target.id);
    wait_for(moved_at + 300).await;
    migrate(&env, hash_slot, &target, &source).await;
    assert_eq!(env.master_of(&key).id, source.id);
    let back_at = published.load(Ordering::SeqCst);
    wait_for(back_at + 300).await;
    stop.store(true, Ordering::SeqCst);
    let total = publisher.await.unwrap();

    let mut got = Vec::with_capacity(total as usize);
    while got.len() < total as usize {
        match timeout(PATIENCE, rx.recv()).await {
            Ok(Some(n)) => got.push(n),
            _ => panic!("got {} of {total} messages", got.len()),
        }
    }
    assert_eq!(got, (0..total).collect::<Vec<_>>());
    if let Ok(Some(extra)) = timeout(Duration::from_millis(1_500), rx.recv()).await {
        panic!("message {extra} delivered twice");
    }
    reader.abort();
    eprintln!("published {total} messages; migrated after {moved_at}, back after {back_at}");
    env.cleanup();
}

/// Moves `hash_slot` from `from` to `to` the way `redis-cli --cluster reshard` does; returns
/// how many keys moved.
async fn migrate(env: &Arc<TestRedis>, hash_slot: u16, from: &Master, to: &Master) -> usize {
    let (env, from, to) = (env.clone(), from.clone(), to.clone());
    tokio::task::spawn_blocking(move || {
        let slot = hash_slot.to_string();
        env.cli(
            &to.addr,
            &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from.id],
        );
        env.cli(
            &from.addr,
            &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to.id],
        );
        let mut moved = 0;
        loop {
            let keys = env.cli(&from.addr, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.addr.port.to_string();
            let mut args = vec!["MIGRATE", &to.addr.host, &port, "", "0", "5000", "KEYS"];
            args.extend(&keys);
            let reply = env.cli(&from.addr, &args);
            assert!(
                reply.trim() == "OK" || reply.trim() == "NOKEY",
                "MIGRATE: {reply}"
            );
            moved += keys.len();
        }
        for node in [&to, &from] {
            env.cli(&node.addr, &["CLUSTER", "SETSLOT", &slot, "NODE", &to.id]);
        }
        for other in env.masters() {
            if other.id != to.id && other.id != from.id {
                env.cli(&other.addr, &["CLUSTER", "SETSLOT", &slot, "NODE", &to.id]);
            }
        }
        moved
    })
    .await
    .unwrap()
}
