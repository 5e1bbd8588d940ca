//! The event bus: ordering, start position, back-pressure, reconnects, malformed entries.

use std::time::Duration;

use concord_bus_redis::{LogSubscription, Redis, RedisBus};
use concord_core::bus::EventBus;
use tokio::time::timeout;

use crate::common::{message, number, TestRedis, PATIENCE};

conformance!(
    one_publisher_order_on_three_slots,
    concurrent_publishers_keep_their_order,
    subscribe_starts_at_the_current_end,
    back_pressure_reader_catches_up,
    undecodable_entries_are_skipped,
    notices_round_trip,
    out_of_range_slots_are_errors,
    a_retried_append_arrives_once,
    an_event_read_on_several_slots_is_decoded_once,
);

/// Reads `count` messages, failing the test if they take longer than [`PATIENCE`].
pub async fn read(sub: &mut LogSubscription, count: usize) -> Vec<u64> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match timeout(PATIENCE, sub.next_message()).await {
            Ok(m) => got.push(number(&m)),
            Err(_) => panic!(
                "slot {}: got {} of {count} messages, then nothing (last {:?})",
                sub.slot(),
                got.len(),
                got.last()
            ),
        }
    }
    got
}

/// Fails if another message arrives soon: nothing beyond what was published.
pub async fn assert_drained(sub: &mut LogSubscription) {
    if let Ok(extra) = timeout(Duration::from_millis(1_500), sub.next_message()).await {
        panic!(
            "slot {}: unexpected extra message {}",
            sub.slot(),
            number(&extra)
        );
    }
}

async fn one_publisher_order_on_three_slots(env: &TestRedis) {
    const N: u64 = 2_000;
    let bus = RedisBus::new(env.redis.clone(), 4).unwrap();
    let mut readers = Vec::new();
    for slot in 0..3 {
        let mut sub = bus.subscribe_slot(slot).await.unwrap();
        readers.push(tokio::spawn(async move {
            let got = read(&mut sub, N as usize).await;
            assert_drained(&mut sub).await;
            got
        }));
    }
    for n in 0..N {
        bus.publish(&[0, 1, 2], message(n)).await.unwrap();
    }
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (0..N).collect::<Vec<_>>());
    }
    // The slot nobody published to stays empty.
    let mut idle = bus.subscribe_slot(3).await.unwrap();
    assert_drained(&mut idle).await;
}

async fn concurrent_publishers_keep_their_order(env: &TestRedis) {
    const PUBLISHERS: u64 = 4;
    const EACH: u64 = 300;
    let bus = RedisBus::new(env.redis.clone(), 4).unwrap();
    let mut subs = Vec::new();
    for slot in [1, 3] {
        subs.push(bus.subscribe_slot(slot).await.unwrap());
    }
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    bus.publish(&[1, 3], message(p * 1_000_000 + i))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for sub in &mut subs {
        let got = read(sub, (PUBLISHERS * EACH) as usize).await;
        for p in 0..PUBLISHERS {
            let mine: Vec<u64> = got
                .iter()
                .filter(|n| *n / 1_000_000 == p)
                .map(|n| n % 1_000_000)
                .collect();
            assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "publisher {p}");
        }
        assert_drained(sub).await;
    }
}

async fn a_retried_append_arrives_once(env: &TestRedis) {
    let bus = RedisBus::new(env.redis.clone(), 2).unwrap();
    let mut sub = bus.subscribe_slot(0).await.unwrap();
    // The same event appended twice (a retry after a timeout that hid a success), then others.
    bus.publish_event(42, &[0], message(1)).await.unwrap();
    bus.publish_event(42, &[0], message(1)).await.unwrap();
    bus.publish_event(43, &[0], message(2)).await.unwrap();
    bus.publish(&[0], message(3)).await.unwrap();
    bus.publish(&[0], message(3)).await.unwrap();
    // Distinct events with equal content are both delivered; only the repeated id is dropped.
    assert_eq!(read(&mut sub, 4).await, vec![1, 2, 3, 3]);
    assert_drained(&mut sub).await;
}

async fn an_event_read_on_several_slots_is_decoded_once(env: &TestRedis) {
    use concord_core::bus::BusMessage;
    let bus = RedisBus::new(env.redis.clone(), 4).unwrap();
    let mut a = bus.subscribe_slot(1).await.unwrap();
    let mut b = bus.subscribe_slot(3).await.unwrap();
    let dispatch = |m: BusMessage| match m {
        BusMessage::Dispatch(dispatch) => dispatch,
        other => panic!("not a dispatch: {other:?}"),
    };
    bus.publish_event(7, &[1, 3], message(1)).await.unwrap();
    let from_a = dispatch(timeout(PATIENCE, a.next_message()).await.unwrap());
    let from_b = dispatch(timeout(PATIENCE, b.next_message()).await.unwrap());
    assert!(
        std::sync::Arc::ptr_eq(&from_a, &from_b),
        "one decoded dispatch shared by the process's slots"
    );
    // Another bus (another process) decodes its own.
    let other = RedisBus::new(env.redis.clone(), 4).unwrap();
    let mut c = other.subscribe_slot(1).await.unwrap();
    bus.publish_event(8, &[1], message(2)).await.unwrap();
    let from_a = dispatch(timeout(PATIENCE, a.next_message()).await.unwrap());
    let from_c = dispatch(timeout(PATIENCE, c.next_message()).await.unwrap());
    assert_eq!(from_a, from_c);
    assert!(!std::sync::Arc::ptr_eq(&from_a, &from_c));
}

async fn subscribe_starts_at_the_current_end(env: &TestRedis) {
    let bus = RedisBus::new(env.redis.clone(), 2).unwrap();
    // A log that does not exist yet: everything published after subscribing arrives.
    let mut fresh = bus.subscribe_slot(1).await.unwrap();
    for n in 0..5 {
        bus.publish(&[0], message(n)).await.unwrap();
    }
    let mut sub = bus.subscribe_slot(0).await.unwrap();
    for n in 5..10 {
        bus.publish(&[0, 1], message(n)).await.unwrap();
    }
    assert_eq!(read(&mut sub, 5).await, vec![5, 6, 7, 8, 9]);
    assert_eq!(read(&mut fresh, 5).await, vec![5, 6, 7, 8, 9]);
    // Through the port, too.
    let mut boxed = bus.subscribe(0).await.unwrap();
    bus.publish(&[0], message(10)).await.unwrap();
    let next = timeout(PATIENCE, boxed.next()).await.unwrap().unwrap();
    assert_eq!(number(&next), 10);
    assert_eq!(read(&mut sub, 1).await, vec![10]);
    assert_drained(&mut sub).await;
}

async fn back_pressure_reader_catches_up(env: &TestRedis) {
    const N: u64 = 5_000;
    let bus = RedisBus::new(env.redis.clone(), 1).unwrap();
    let mut sub = bus.subscribe_slot(0).await.unwrap();
    // The reader reads nothing while all of these go in.
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        for n in chunk {
            bus.publish(&[0], message(*n)).await.unwrap();
        }
    }
    let mut xlen = redis::cmd("XLEN");
    xlen.arg(bus.keys().log(0));
    let len: u64 = env.redis.query(&xlen).await.unwrap();
    assert!(len >= N, "log holds {len} entries");
    assert_eq!(read(&mut sub, N as usize).await, (0..N).collect::<Vec<_>>());
    assert_drained(&mut sub).await;
}

async fn undecodable_entries_are_skipped(env: &TestRedis) {
    let bus = RedisBus::new(env.redis.clone(), 1).unwrap();
    let mut sub = bus.subscribe_slot(0).await.unwrap();
    let key = bus.keys().log(0);
    let xadd = |field: &str, value: &[u8]| {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&key).arg("*").arg(field).arg(value);
        cmd
    };
    let _: String = env.redis.query(&xadd("m", b"D\xff\xff")).await.unwrap();
    let _: String = env.redis.query(&xadd("other", b"x")).await.unwrap();
    let _: String = env.redis.query(&xadd("m", b"Cnot json")).await.unwrap();
    bus.publish(&[0], message(1)).await.unwrap();
    assert_eq!(read(&mut sub, 1).await, vec![1]);
    assert_eq!(sub.skipped(), 3);
}

async fn notices_round_trip(env: &TestRedis) {
    let bus = RedisBus::new(env.redis.clone(), 1).unwrap();
    bus.append_notice(b"before").await.unwrap();
    let mut notices = bus.subscribe_notices().await.unwrap();
    for n in 0..20 {
        bus.append_notice(format!("notice {n}").as_bytes())
            .await
            .unwrap();
    }
    for n in 0..20 {
        let got = timeout(PATIENCE, notices.next()).await.unwrap();
        assert_eq!(got, format!("notice {n}").as_bytes());
    }
    assert!(timeout(Duration::from_millis(1_200), notices.next())
        .await
        .is_err());
}

async fn out_of_range_slots_are_errors(env: &TestRedis) {
    let bus = RedisBus::new(env.redis.clone(), 2).unwrap();
    let err = bus.publish(&[0, 2], message(0)).await.unwrap_err();
    assert!(err.to_string().contains("slot 2 out of range"), "{err}");
    assert!(bus.subscribe(2).await.is_err());
    assert!(RedisBus::new(env.redis.clone(), 0).is_err());
    assert!(RedisBus::new(env.redis.clone(), 1025).is_err());
}

#[tokio::test]
async fn unreachable_redis_errors_name_the_redacted_url() {
    for url in [
        "redis://user:hunter2@127.0.0.1:1/0",
        "redis+cluster://user:hunter2@127.0.0.1:1,127.0.0.1:2",
    ] {
        let err = Redis::connect(url, "cc").await.unwrap_err().to_string();
        assert!(err.starts_with("cannot connect to Redis at "), "{err}");
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(err.contains("***"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let err = Redis::connect("redis://h:1,h:2", "cc").await.unwrap_err();
    assert!(err.to_string().contains("redis+cluster"), "{err}");
}
