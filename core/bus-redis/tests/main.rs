//! Conformance tests of the Redis adapters, each run against a real standalone Redis
//! (`CONCORD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`) and a real Redis Cluster
//! (`CONCORD_TEST_REDIS_CLUSTER_URL`, default the three nodes `scripts/redis-cluster.sh up`
//! starts on 7101-7103). An unreachable server fails the tests; set
//! `CONCORD_TEST_REDIS_CLUSTER=skip` to leave the cluster variants out. Every test works under a
//! random key prefix and deletes its keys when it passes.

#[macro_use]
mod common;

mod bus;
mod extras;
mod migration;
mod reconnect;
mod topology;
