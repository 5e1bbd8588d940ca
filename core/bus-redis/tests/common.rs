//! Test harness: connects to the standalone Redis and the Redis Cluster under a random key
//! prefix, and drives the servers with `redis-cli` (kill connections, migrate hash slots).

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use concord_bus_redis::keys::key_hash_slot;
use concord_bus_redis::url::NodeAddr;
use concord_bus_redis::{Redis, RedisTarget};
use concord_core::bus::{BusMessage, Dispatch};
use concord_core::gateway::event::EventKind;
use concord_core::id::Id;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Which deployment a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Standalone,
    Cluster,
}

/// A connected handle with a prefix of its own.
pub struct TestRedis {
    pub backend: Backend,
    pub redis: Redis,
    url: String,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn(&TestRedis)`. Tests
/// listed after `exclusive:` run alone, the others concurrently.
macro_rules! conformance {
    (exclusive: $($name:ident),* $(,)?) => {
        conformance!(@each exclusive; $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        conformance!(@each shared; $($name),*);
    };
    (@each $lock:ident; $($name:ident),*) => {
        mod standalone {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let _guard = crate::common::$lock().await;
                    let env = crate::common::TestRedis::connect(crate::common::Backend::Standalone)
                        .await
                        .expect("standalone Redis is never skipped");
                    super::$name(&env).await;
                    env.cleanup();
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let _guard = crate::common::$lock().await;
                    let Some(env) =
                        crate::common::TestRedis::connect(crate::common::Backend::Cluster).await
                    else {
                        return;
                    };
                    super::$name(&env).await;
                    env.cleanup();
                }
            )*
        }
    };
}

static SERVERS: RwLock<()> = RwLock::const_new(());

/// Held by tests that may run alongside others.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    SERVERS.read().await
}

/// Held by tests that disturb other clients of a server (moving hash slots): no other test in
/// this binary runs meanwhile.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERVERS.write().await
}

impl TestRedis {
    /// Connects to `backend` under a fresh random prefix. `None` only for the cluster when
    /// `CONCORD_TEST_REDIS_CLUSTER=skip`; an unreachable server fails the test.
    pub async fn connect(backend: Backend) -> Option<Self> {
        let url = match backend {
            Backend::Standalone => std::env::var("CONCORD_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
            Backend::Cluster => {
                if std::env::var("CONCORD_TEST_REDIS_CLUSTER").as_deref() == Ok("skip") {
                    eprintln!("CONCORD_TEST_REDIS_CLUSTER=skip: not running the cluster variant");
                    return None;
                }
                std::env::var("CONCORD_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
                    "redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103".to_owned()
                })
            }
        };
        let prefix = format!("cct{:016x}", rand::random::<u64>());
        match Redis::connect(&url, &prefix).await {
            Ok(redis) => {
                assert_eq!(redis.is_cluster(), backend == Backend::Cluster, "{url}");
                Some(Self {
                    backend,
                    redis,
                    url,
                })
            }
            Err(error) => match backend {
                Backend::Standalone => panic!(
                    "standalone Redis unreachable: {error}. Start it (scripts/services.sh) or \
                     point CONCORD_TEST_REDIS_URL at one"
                ),
                Backend::Cluster => panic!(
                    "Redis Cluster unreachable: {error}. Start it with \
                     `scripts/redis-cluster.sh up`, point CONCORD_TEST_REDIS_CLUSTER_URL at \
                     one, or set CONCORD_TEST_REDIS_CLUSTER=skip to skip the cluster tests"
                ),
            },
        }
    }

    /// The master nodes, with the hash-slot ranges each serves.
    pub fn masters(&self) -> Vec<Master> {
        let target = self.redis.target();
        match self.backend {
            Backend::Standalone => vec![Master {
                addr: target.nodes()[0].clone(),
                id: String::new(),
                ranges: vec![(0, 16_383)],
            }],
            Backend::Cluster => {
                let seed = &target.nodes()[0];
                let nodes = cli(target, seed, &["CLUSTER", "NODES"]);
                let mut masters: Vec<Master> = nodes
                    .lines()
                    .filter_map(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        let flags = fields.get(2)?;
                        if !flags.contains("master") || flags.contains("fail") {
                            return None;
                        }
                        let hostport = fields[1].split('@').next()?;
                        let (host, port) = hostport.rsplit_once(':')?;
                        let ranges = fields[8..]
                            .iter()
                            .filter(|r| !r.starts_with('['))
                            .filter_map(|r| match r.split_once('-') {
                                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                                None => r.parse().ok().map(|s| (s, s)),
                            })
                            .collect();
                        Some(Master {
                            addr: NodeAddr {
                                host: host.to_owned(),
                                port: port.parse().ok()?,
                            },
                            id: fields[0].to_owned(),
                            ranges,
                        })
                    })
                    .collect();
                masters.sort_by_key(|m| m.addr.port);
                masters
            }
        }
    }

    /// The master serving `key`.
    pub fn master_of(&self, key: &str) -> Master {
        let slot = key_hash_slot(key.as_bytes());
        self.masters()
            .into_iter()
            .find(|m| m.serves(slot))
            .unwrap_or_else(|| panic!("no master serves hash slot {slot}"))
    }

    /// Runs `redis-cli` against `node`, panicking on failure.
    pub fn cli(&self, node: &NodeAddr, args: &[&str]) -> String {
        cli(self.redis.target(), node, args)
    }

    /// Creates an ACL user of this test's own on every master and connects as it, under the
    /// same prefix: its connections can then be told apart from everyone else's (other tests,
    /// other processes sharing the servers), even after the driver reconnects.
    pub async fn as_own_user(&self) -> OwnUser {
        let name = format!("{}-user", self.redis.prefix());
        let password = format!("{:016x}", rand::random::<u64>());
        for master in self.masters() {
            let rules = ["on", &format!(">{password}"), "~*", "&*", "+@all"];
            let mut args = vec!["ACL", "SETUSER", &name];
            args.extend(rules);
            self.cli(&master.addr, &args);
        }
        let (scheme, rest) = self.url.split_once("://").expect("a URL");
        let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
        let url = format!("{scheme}://{name}:{password}@{hosts}");
        let redis = Redis::connect(&url, self.redis.prefix())
            .await
            .expect("connect as the test's ACL user");
        OwnUser { name, redis }
    }

    /// Connections of `user` on `node` blocked in `XREAD`.
    pub fn blocked_readers(&self, node: &NodeAddr, user: &str) -> usize {
        self.cli(node, &["CLIENT", "LIST"])
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                fields.contains(&"cmd=xread")
                    && fields.contains(&format!("user={user}").as_str())
                    && fields
                        .iter()
                        .any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('b')))
            })
            .count()
    }

    /// `CLIENT KILL USER <user>` on `node`: drops that user's connections there. Returns how
    /// many.
    pub fn kill_user_clients(&self, node: &NodeAddr, user: &str) -> usize {
        let killed = self.cli(node, &["CLIENT", "KILL", "USER", user]);
        killed.trim().parse().expect("CLIENT KILL answers a count")
    }

    /// Deletes every key under this test's prefix.
    pub fn cleanup(&self) {
        let pattern = format!("{}:*", self.redis.prefix());
        for master in self.masters() {
            let keys = self.cli(&master.addr, &["--scan", "--pattern", &pattern]);
            for key in keys.lines().filter(|k| !k.is_empty()) {
                self.cli(&master.addr, &["UNLINK", key]);
            }
        }
    }
}

/// A test's own ACL user and a handle connected as it.
pub struct OwnUser {
    pub name: String,
    pub redis: Redis,
}

impl OwnUser {
    /// Deletes the user (its connections close with it).
    pub fn delete(self, env: &TestRedis) {
        for master in env.masters() {
            env.cli(&master.addr, &["ACL", "DELUSER", &self.name]);
        }
    }
}

/// A cluster master.
#[derive(Debug, Clone)]
pub struct Master {
    pub addr: NodeAddr,
    pub id: String,
    pub ranges: Vec<(u16, u16)>,
}

impl Master {
    pub fn serves(&self, slot: u16) -> bool {
        self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
}

fn cli(target: &RedisTarget, node: &NodeAddr, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("-h")
        .arg(&node.host)
        .arg("-p")
        .arg(node.port.to_string());
    let creds = target.credentials();
    if let Some(user) = &creds.username {
        cmd.arg("--user").arg(user);
    }
    if let Some(password) = &creds.password {
        cmd.arg("-a").arg(password).arg("--no-auth-warning");
    }
    if let RedisTarget::Standalone { db, .. } = target {
        cmd.arg("-n").arg(db.to_string());
    }
    let out = cmd.args(args).output().expect("redis-cli runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !stdout.starts_with("ERR") && !stdout.starts_with("(error)"),
        "redis-cli {args:?} on {node}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Message number `n`: a dispatch (payload size varying with `n`, some over 4 KiB) or, every
/// fifth one, a control message.
pub fn message(n: u64) -> BusMessage {
    if n % 5 == 4 {
        return BusMessage::GuildRemoved {
            guild_id: Id::new(n + 1),
        };
    }
    let filler = "x".repeat(((n * 37) % 5_000) as usize);
    BusMessage::Dispatch(std::sync::Arc::new(Dispatch {
        access: None,
        content_exempt: vec![Id::new(1)],
        data: Bytes::from(format!("{n} {filler}")),
        data_without_content: n.is_multiple_of(2).then(|| Bytes::from(format!("{n}"))),
        guild_id: Some(Id::new(7)),
        kind: EventKind::MessageCreate,
        user_id: None,
    }))
}

/// The number a [`message`] carries, checking the rest of it arrived intact.
pub fn number(got: &BusMessage) -> u64 {
    let n = match got {
        BusMessage::GuildRemoved { guild_id } => guild_id.get() - 1,
        BusMessage::Dispatch(d) => std::str::from_utf8(&d.data)
            .ok()
            .and_then(|text| text.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("unnumbered dispatch {d:?}")),
        other => panic!("unexpected message {other:?}"),
    };
    assert_eq!(got, &message(n), "message {n} arrived altered");
    n
}

/// Generous bound on any single wait in these tests.
pub const PATIENCE: Duration = Duration::from_secs(30);
