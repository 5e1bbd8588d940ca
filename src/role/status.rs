//! `concord cluster init|status`: the cluster's settings, members, slot owners and log lag.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use concord_bus_redis::RedisTopology;
use concord_core::topology::Topology;

use super::connect_redis;
use crate::config::{ClusterAction, Config};
use concord_bus_redis::Redis;

/// Runs `concord cluster init|status`, printing to standard output.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn cluster_command(config: &Config, action: ClusterAction) -> anyhow::Result<()> {
    let (redis, topology, _) = connect_redis(config).await?;
    // Built whole, then written once: a reader that stops early (`| grep -q`, `| head`) ends
    // the write with a broken pipe, which is not an error of the command.
    let mut out = String::new();
    match action {
        ClusterAction::Init => {
            let cluster = RedisTopology::cluster_config(&redis)
                .await?
                .context("cluster settings missing after init")?;
            writeln!(
                out,
                "cluster at {}: {} slots (created at {} ms)",
                redis.redacted_url(),
                cluster.slots,
                cluster.created_ms
            )?;
        }
        ClusterAction::Status => {
            let table = topology.table().await?;
            writeln!(out, "cluster at {}", redis.redacted_url())?;
            writeln!(out, "members ({}):", table.members.len())?;
            for member in &table.members {
                let held = table
                    .owners
                    .iter()
                    .flatten()
                    .filter(|l| l.node == member.node);
                writeln!(
                    out,
                    "  node {:>3}  {:?}  {}  slots held: {}",
                    member.node,
                    member.state,
                    member.advertise,
                    held.count()
                )?;
            }
            let logs = log_states(&redis, &table).await;
            writeln!(out, "slots ({}):", table.owners.len())?;
            for (slot, owner) in table.owners.iter().enumerate() {
                let owner = owner.map_or_else(
                    || "unowned".to_owned(),
                    |l| format!("node {} (epoch {})", l.node, l.epoch),
                );
                let log = logs.get(slot).cloned().unwrap_or_default();
                let lag = match log.lag_ms {
                    Some(ms) => format!("lag {ms} ms"),
                    None => "lag unknown".to_owned(),
                };
                writeln!(
                    out,
                    "  slot {slot:>4}  {owner}  log length {}  {lag}",
                    log.length
                )?;
            }
        }
    }
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// A slot log as `cluster status` shows it.
#[derive(Debug, Clone, Default)]
struct LogState {
    /// Entries kept.
    length: u64,
    /// How far behind the newest entry the owner's last reported read is, in milliseconds of
    /// entry time (stream ids start with their append time); `None` without a report.
    lag_ms: Option<u64>,
}

/// Each slot log's length and its owner's lag.
async fn log_states(redis: &Redis, table: &concord_core::topology::SlotTable) -> Vec<LogState> {
    let keys = concord_bus_redis::Keys::new(redis.prefix(), table.owners.len() as u16);
    let mut states = Vec::with_capacity(table.owners.len());
    for slot in 0..table.owners.len() as u16 {
        let length: u64 = redis
            .query(redis::cmd("XLEN").arg(keys.log(slot)))
            .await
            .unwrap_or_default();
        let newest: redis::Value = redis
            .query(
                redis::cmd("XREVRANGE")
                    .arg(keys.log(slot))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await
            .unwrap_or(redis::Value::Nil);
        let tail = newest_id(&newest);
        let applied: Option<String> = redis
            .query(redis::cmd("GET").arg(keys.applied(slot)))
            .await
            .unwrap_or_default();
        let ms = |id: &str| id.split('-').next().and_then(|t| t.parse::<u64>().ok());
        let lag_ms = match (tail, applied) {
            (None, Some(_)) => Some(0),
            (Some(tail), Some(read)) => match (ms(&tail), ms(&read)) {
                (Some(tail), Some(read)) => Some(tail.saturating_sub(read)),
                _ => None,
            },
            _ => None,
        };
        states.push(LogState { length, lag_ms });
    }
    states
}

/// The id of the entry in an `XREVRANGE … COUNT 1` reply.
fn newest_id(reply: &redis::Value) -> Option<String> {
    let redis::Value::Array(entries) = reply else {
        return None;
    };
    let redis::Value::Array(entry) = entries.first()? else {
        return None;
    };
    match entry.first()? {
        redis::Value::BulkString(id) => String::from_utf8(id.clone()).ok(),
        redis::Value::SimpleString(id) => Some(id.clone()),
        _ => None,
    }
}
