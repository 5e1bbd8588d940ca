//! A reader whose connection the server drops resumes where it stopped: nothing lost, nothing
//! repeated. The reader connects as an ACL user of the test's own, so only its connections are
//! killed, whoever else uses the servers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use concord_bus_redis::RedisBus;
use concord_core::bus::EventBus;
use tokio::time::timeout;

use crate::bus::{assert_drained, read};
use crate::common::{message, TestRedis, PATIENCE};

conformance!(reader_survives_killed_connections);

async fn reader_survives_killed_connections(env: &TestRedis) {
    const ROUND: u64 = 200;
    const ROUNDS: u64 = 4;
    let user = env.as_own_user().await;
    let bus = RedisBus::new(env.redis.clone(), 2).unwrap();
    let node = env.master_of(&bus.keys().log(1)).addr;
    let mut sub = RedisBus::new(user.redis.clone(), 2)
        .unwrap()
        .subscribe_slot(1)
        .await
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < (ROUND * ROUNDS) as usize {
                got.extend(read(&mut sub, 1).await);
                received.store(got.len() as u64, Ordering::SeqCst);
            }
            assert_drained(&mut sub).await;
            (got, sub)
        })
    };
    for round in 0..ROUNDS {
        if round > 0 {
            // Once the reader has caught up it sits in XREAD BLOCK: cut it off there.
            wait_until(|| received.load(Ordering::SeqCst) == round * ROUND).await;
            wait_until(|| env.blocked_readers(&node, &user.name) == 1).await;
            let killed = env.kill_user_clients(&node, &user.name);
            assert!(killed >= 1, "round {round}: nothing to kill on {node}");
        }
        for n in round * ROUND..(round + 1) * ROUND {
            bus.publish(&[1], message(n)).await.unwrap();
        }
    }
    let (got, sub) = timeout(PATIENCE * 2, reader).await.unwrap().unwrap();
    assert_eq!(got, (0..ROUND * ROUNDS).collect::<Vec<_>>());
    eprintln!(
        "{:?}: reader met {} transport errors",
        env.backend,
        sub.read_errors()
    );
    drop(sub);
    user.delete(env);
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
