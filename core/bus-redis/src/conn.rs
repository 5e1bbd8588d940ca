//! [`Redis`]: one cloneable handle over a standalone server or a Redis Cluster.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisFuture, Value};

use crate::error::{Error, Result};
use crate::url::{redacted, RedisTarget};

/// How long connecting (and the first PING) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Response timeout of shared connections: commands here are short and non-blocking.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Response timeout of dedicated connections: must exceed the longest `BLOCK` issued on them.
pub const DEDICATED_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis handle: cloning it shares the underlying multiplexed connection.
///
/// Standalone servers go through a reconnecting [`ConnectionManager`], clusters through a
/// [`ClusterConnection`] that follows MOVED/ASK redirects; both implement [`ConnectionLike`], so
/// commands and scripts run unchanged on either.
#[derive(Clone)]
pub struct Redis {
    conn: Conn,
    shared: Arc<Shared>,
}

#[derive(Clone)]
enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

enum Client {
    Standalone(redis::Client),
    Cluster(Box<ClusterClient>),
}

struct Shared {
    client: Client,
    prefix: Arc<str>,
    target: RedisTarget,
    url: String,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.shared.url)
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to the Redis at `url` (see [`crate::url`]) and checks it answers a PING within
    /// [`CONNECT_TIMEOUT`]; every key this handle's users build starts with `prefix`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], or [`Error::Connect`]/[`Error::ConnectTimeout`] naming the URL with
    /// its password redacted.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let target = RedisTarget::parse(url)?;
        let url = redacted(url);
        let connect_err = |source| Error::Connect {
            url: url.clone(),
            source,
        };
        let infos = target.connection_infos().map_err(|e| match e {
            Error::Redis(source) => connect_err(source),
            other => other,
        })?;
        let client = if target.is_cluster() {
            Client::Cluster(Box::new(
                ClusterClientBuilder::new(infos)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .build()
                    .map_err(connect_err)?,
            ))
        } else {
            let info = infos.into_iter().next().ok_or_else(|| Error::InvalidUrl {
                url: url.clone(),
                reason: "no host".to_owned(),
            })?;
            Client::Standalone(redis::Client::open(info).map_err(connect_err)?)
        };
        let shared = Arc::new(Shared {
            client,
            prefix: prefix.into(),
            target,
            url,
        });
        Self::open(shared, RESPONSE_TIMEOUT).await
    }

    /// A fresh connection of the same kind, shared with no one, for blocking reads (`XREAD
    /// BLOCK` would stall every other command on a multiplexed connection). Its response timeout
    /// is [`DEDICATED_RESPONSE_TIMEOUT`].
    ///
    /// # Errors
    /// As [`Self::connect`].
    pub async fn dedicated(&self) -> Result<Self> {
        Self::open(self.shared.clone(), DEDICATED_RESPONSE_TIMEOUT).await
    }

    async fn open(shared: Arc<Shared>, response_timeout: Duration) -> Result<Self> {
        let url = shared.url.clone();
        let attempt = async {
            let conn = match &shared.client {
                Client::Standalone(client) => {
                    // Few retries per (re)connection: a refused connection then fails in
                    // a fraction of a second with its real cause, and the manager tries again
                    // on the next command anyway.
                    let config = ConnectionManagerConfig::new()
                        .set_number_of_retries(1)
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(response_timeout))
                        .set_max_delay(Duration::from_secs(2));
                    Conn::Standalone(
                        ConnectionManager::new_with_config(client.clone(), config).await?,
                    )
                }
                Client::Cluster(client) => {
                    let config = ClusterConfig::new()
                        .set_connection_timeout(CONNECT_TIMEOUT)
                        .set_response_timeout(response_timeout);
                    Conn::Cluster(client.get_async_connection_with_config(config).await?)
                }
            };
            let mut redis = Self {
                conn,
                shared: shared.clone(),
            };
            let pong: String = redis::cmd("PING").query_async(&mut redis).await?;
            if pong != "PONG" {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "unexpected PING reply",
                    pong,
                )));
            }
            Ok(redis)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(redis)) => Ok(redis),
            Ok(Err(source)) => Err(Error::Connect { url, source }),
            Err(_) => Err(Error::ConnectTimeout {
                url,
                timeout: CONNECT_TIMEOUT,
            }),
        }
    }

    /// Runs one command on this handle's connection.
    ///
    /// # Errors
    /// [`Error::Redis`] on transport or server errors, or when the reply does not convert to `T`.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut conn = self.clone();
        Ok(cmd.query_async(&mut conn).await?)
    }

    /// Key prefix.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Where this handle connects.
    pub fn target(&self) -> &RedisTarget {
        &self.shared.target
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// The URL connected to, password redacted.
    pub fn redacted_url(&self) -> &str {
        &self.shared.url
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.conn {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.conn {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.conn {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
