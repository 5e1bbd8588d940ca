//! The topology: cluster config, membership, fenced slot leases, guild interest.

use std::time::Duration;

use concord_bus_redis::RedisTopology;
use concord_core::id::Id;
use concord_core::topology::{Member, NodeState, SlotLease, Topology};

use crate::common::TestRedis;

conformance!(
    cluster_config_is_written_once,
    slot_leases_are_fenced,
    membership_leases,
    table_lists_live_members_and_owners,
    interest_counts_per_slot,
);

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(300);

fn member(node: u16, instance: &str, state: NodeState) -> Member {
    Member {
        advertise: format!("shard-{node}:7000"),
        instance: instance.to_owned(),
        node,
        state,
    }
}

async fn cluster_config_is_written_once(env: &TestRedis) {
    assert_eq!(
        RedisTopology::cluster_config(&env.redis).await.unwrap(),
        None
    );
    let first = RedisTopology::init_cluster(&env.redis, 16).await.unwrap();
    assert_eq!(first.slots, 16);
    let again = RedisTopology::init_cluster(&env.redis, 32).await.unwrap();
    assert_eq!(again, first, "an existing config wins");
    assert_eq!(
        RedisTopology::cluster_config(&env.redis).await.unwrap(),
        Some(first)
    );
    assert!(RedisTopology::init_cluster(&env.redis, 0).await.is_err());
    assert!(RedisTopology::new(env.redis.clone(), 1025).is_err());
}

async fn slot_leases_are_fenced(env: &TestRedis) {
    let topo = RedisTopology::new(env.redis.clone(), 4).unwrap();
    let first = topo
        .acquire_slot(2, 1, SHORT)
        .await
        .unwrap()
        .expect("free slot");
    assert_eq!(first.node, 1);
    assert_eq!(topo.acquire_slot(2, 2, LONG).await.unwrap(), None, "held");
    assert!(topo.renew_slot(2, first, SHORT).await.unwrap());
    // Other slots are independent.
    let other = topo.acquire_slot(3, 2, LONG).await.unwrap().unwrap();
    assert_eq!(other.node, 2);

    tokio::time::sleep(SHORT * 2).await;
    assert!(!topo.renew_slot(2, first, LONG).await.unwrap(), "expired");
    let second = topo
        .acquire_slot(2, 2, LONG)
        .await
        .unwrap()
        .expect("expired lease");
    assert!(second.epoch > first.epoch, "{second:?} after {first:?}");
    assert_eq!(second.node, 2);

    // The old holder is fenced: it can neither renew nor release the new lease.
    assert!(!topo.renew_slot(2, first, LONG).await.unwrap());
    let same_node_old_epoch = SlotLease {
        epoch: first.epoch,
        node: 2,
    };
    assert!(!topo.renew_slot(2, same_node_old_epoch, LONG).await.unwrap());
    topo.release_slot(2, first).await.unwrap();
    topo.release_slot(2, same_node_old_epoch).await.unwrap();
    assert_eq!(topo.table().await.unwrap().owners[2], Some(second));

    topo.release_slot(2, second).await.unwrap();
    let third = topo.acquire_slot(2, 1, LONG).await.unwrap().unwrap();
    assert!(third.epoch > second.epoch);
    assert!(topo.acquire_slot(4, 1, LONG).await.is_err(), "out of range");
}

async fn membership_leases(env: &TestRedis) {
    let topo = RedisTopology::new(env.redis.clone(), 2).unwrap();
    let a = member(1, "instance-a", NodeState::Starting);
    let b = member(1, "instance-b", NodeState::Ready);
    assert!(topo.register(&a, LONG).await.unwrap());
    assert!(
        !topo.register(&b, LONG).await.unwrap(),
        "node id held by a live instance"
    );
    assert!(!topo.renew(&b, LONG).await.unwrap());
    assert!(
        topo.register(&a, LONG).await.unwrap(),
        "same instance re-registers"
    );

    let ready = Member {
        state: NodeState::Ready,
        ..a.clone()
    };
    assert!(topo.renew(&ready, LONG).await.unwrap());
    assert_eq!(topo.table().await.unwrap().members, vec![ready.clone()]);

    // Another instance's deregister is a no-op.
    topo.deregister(&b).await.unwrap();
    assert_eq!(topo.table().await.unwrap().members, vec![ready.clone()]);

    // An expired lease cannot be renewed, and its node id is free again.
    let short = member(2, "instance-c", NodeState::Ready);
    assert!(topo.register(&short, SHORT).await.unwrap());
    tokio::time::sleep(SHORT * 2).await;
    assert!(!topo.renew(&short, LONG).await.unwrap());
    let taker = member(2, "instance-d", NodeState::Ready);
    assert!(topo.register(&taker, LONG).await.unwrap());

    topo.deregister(&ready).await.unwrap();
    topo.deregister(&taker).await.unwrap();
    assert!(topo.table().await.unwrap().members.is_empty());
    assert!(!topo.renew(&ready, LONG).await.unwrap());
}

async fn table_lists_live_members_and_owners(env: &TestRedis) {
    let topo = RedisTopology::new(env.redis.clone(), 3).unwrap();
    let empty = topo.table().await.unwrap();
    assert!(empty.members.is_empty());
    assert_eq!(empty.owners, vec![None, None, None]);

    let live = [
        member(5, "i5", NodeState::Ready),
        member(0, "i0", NodeState::Draining),
    ];
    for m in &live {
        assert!(topo.register(m, LONG).await.unwrap());
    }
    let dying = member(3, "i3", NodeState::Ready);
    assert!(topo.register(&dying, SHORT).await.unwrap());
    let lease = topo.acquire_slot(1, 5, LONG).await.unwrap().unwrap();

    let table = topo.table().await.unwrap();
    assert_eq!(table.members.len(), 3);
    assert_eq!(table.owners, vec![None, Some(lease), None]);
    assert_eq!(table.owner(1), Some(5));

    tokio::time::sleep(SHORT * 2).await;
    let table = topo.table().await.unwrap();
    assert_eq!(
        table.members,
        vec![live[1].clone(), live[0].clone()],
        "ordered by node"
    );
    assert_eq!(table.ready_nodes(), vec![5]);
    // The expired member's id was dropped from the members set.
    let mut smembers = redis::cmd("SMEMBERS");
    smembers.arg(topo.keys().members());
    let mut ids: Vec<u16> = env.redis.query(&smembers).await.unwrap();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 5]);
}

async fn interest_counts_per_slot(env: &TestRedis) {
    let topo = RedisTopology::new(env.redis.clone(), 4).unwrap();
    let (g1, g2, g3) = (Id::new(101), Id::new(102), Id::new(103));
    assert!(topo.interested_slots(g1).await.unwrap().is_empty());

    topo.change_interest(0, &[(g1, 2), (g2, 1)]).await.unwrap();
    topo.change_interest(3, &[(g1, 1), (g3, 0)]).await.unwrap();
    topo.change_interest(1, &[(g1, 1)]).await.unwrap();
    assert_eq!(topo.interested_slots(g1).await.unwrap(), vec![0, 1, 3]);
    assert_eq!(topo.interested_slots(g2).await.unwrap(), vec![0]);
    assert!(topo.interested_slots(g3).await.unwrap().is_empty());

    // Decrementing to zero removes the slot (and its field).
    topo.change_interest(0, &[(g1, -1)]).await.unwrap();
    assert_eq!(topo.interested_slots(g1).await.unwrap(), vec![0, 1, 3]);
    topo.change_interest(0, &[(g1, -1), (g2, -5)])
        .await
        .unwrap();
    assert_eq!(topo.interested_slots(g1).await.unwrap(), vec![1, 3]);
    assert!(topo.interested_slots(g2).await.unwrap().is_empty());
    let mut hexists = redis::cmd("HEXISTS");
    hexists.arg(topo.keys().interest(g1)).arg("0");
    assert_eq!(env.redis.query::<i64>(&hexists).await.unwrap(), 0);

    // A reset drops only that slot's counts, and its guild set.
    topo.change_interest(1, &[(g2, 4)]).await.unwrap();
    topo.reset_slot_interest(1).await.unwrap();
    assert_eq!(topo.interested_slots(g1).await.unwrap(), vec![3]);
    assert!(topo.interested_slots(g2).await.unwrap().is_empty());
    let mut exists = redis::cmd("EXISTS");
    exists.arg(topo.keys().guilds(1));
    assert_eq!(env.redis.query::<i64>(&exists).await.unwrap(), 0);
    // Resetting an empty slot is fine.
    topo.reset_slot_interest(2).await.unwrap();
    assert!(topo.change_interest(4, &[(g1, 1)]).await.is_err());
}
