//! One message POST as a Discord client makes it (rate limits honoured), the figures all
//! POSTs add up to, and where messages go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use reqwest::Method;
use serde_json::json;

use crate::clock::unix_nanos;
use crate::delivery::Posted;
use crate::fixture::Fixture;
use crate::report::Report;
use crate::rest::{Call, Rest};
use crate::stats::{bump, Hist, Tally};

/// Where one message goes and who posts it.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Channel id.
    pub channel: String,
    /// Channel id as a number.
    pub channel_id: u64,
    /// Guild id as a number.
    pub guild_id: u64,
    /// Author's token.
    pub token: String,
    /// Author's index among the fixture users.
    pub sender: usize,
}

/// Destinations taken round-robin: consecutive messages go to different guilds, and each
/// guild's members take turns, so every author's rate limit is shared thinly.
#[derive(Debug, Clone)]
pub struct Destinations(Vec<Destination>);

impl Destinations {
    /// Every (member, guild) pair of `guilds`, interleaved by guild.
    pub fn new(fixture: &Fixture, guilds: &[usize]) -> Self {
        let longest = guilds
            .iter()
            .map(|g| fixture.guilds[*g].members.len())
            .max()
            .unwrap_or(0);
        let mut list = Vec::new();
        for rank in 0..longest {
            for g in guilds {
                let guild = &fixture.guilds[*g];
                if let Some(member) = guild.members.get(rank) {
                    list.push(Destination {
                        channel: guild.channel_id.clone(),
                        channel_id: guild.channel_id.parse().unwrap_or(0),
                        guild_id: guild.id.parse().unwrap_or(0),
                        token: fixture.users[*member].token.clone(),
                        sender: *member,
                    });
                }
            }
        }
        Self(list)
    }

    /// Whether there is nowhere to post.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The destination of message `k`.
    pub fn pick(&self, k: u64) -> &Destination {
        &self.0[(k % self.0.len() as u64) as usize]
    }
}

/// What a set of POSTs added up to.
#[derive(Debug, Default)]
pub struct PostStats {
    latency: Mutex<Hist>,
    ok: AtomicU64,
    failed: AtomicU64,
    rate_limited: AtomicU64,
    waited_micros: AtomicU64,
    statuses: Mutex<Tally>,
    codes: Mutex<Tally>,
    transport: Mutex<Tally>,
    /// Failures by their one-line reason (status, code, message, fields).
    errors: Mutex<Tally>,
}

impl PostStats {
    /// Successful POSTs so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Failed POSTs so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// 429s so far.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Adds the POST figures, each name prefixed by `prefix`, and the `post` histogram.
    pub fn fill(&self, report: &mut Report, prefix: &str, seconds: f64) {
        let lock = |m: &Mutex<Tally>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        report.count(&format!("{prefix}ok"), self.ok());
        report.count(&format!("{prefix}failed"), self.failed());
        report.count("rate_limited", self.rate_limited());
        report.real(
            "rate_limit_wait_seconds",
            self.waited_micros.load(Ordering::Relaxed) as f64 / 1e6,
        );
        report.real(
            &format!("{prefix}per_second"),
            if seconds > 0.0 {
                self.ok() as f64 / seconds
            } else {
                0.0
            },
        );
        report.hist(
            "post",
            &self.latency.lock().unwrap_or_else(|e| e.into_inner()),
        );
        report.breakdown("post_status", lock(&self.statuses));
        report.breakdown("post_discord_codes", lock(&self.codes));
        report.breakdown("post_transport_errors", lock(&self.transport));
        report.breakdown("post_errors", lock(&self.errors));
    }
}

/// Longest nonce Discord accepts.
const MAX_NONCE_LEN: usize = 25;

/// The nonce of message `seq` of run `run_id`: the run id then `seq` in base 36, so that no
/// two runs send the same nonce (a server that de-duplicates on nonce would otherwise answer
/// a later run with an earlier run's message and send no event). A 10-character run id leaves
/// 13 digits for `seq`, which base 36 needs only from 2^64 on: the nonce stays within
/// [`MAX_NONCE_LEN`].
pub fn nonce(run_id: &str, seq: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    let mut rest = seq;
    loop {
        digits.push(DIGITS[(rest % 36) as usize]);
        rest /= 36;
        if rest == 0 {
            break;
        }
    }
    digits.reverse();
    let mut nonce = run_id.to_owned();
    nonce.extend(digits.into_iter().map(char::from));
    debug_assert!(nonce.len() <= MAX_NONCE_LEN, "run ids are short enough");
    nonce
}

/// Posts message `seq` of run `run_id` to `to`; returns it when the server accepted it.
/// The content carries the send time, taken after any rate-limit wait.
pub async fn post_message(
    rest: &Rest,
    stats: &PostStats,
    run_id: &str,
    to: &Destination,
    seq: u64,
) -> Option<Posted> {
    let call = Call::new(
        Method::POST,
        "/channels/{channel_id}/messages",
        format!("/channels/{}/messages", to.channel),
        Some(&to.token),
    );
    let sent_at = AtomicU64::new(0);
    let body = || {
        let now = unix_nanos();
        sent_at.store(now, Ordering::Relaxed);
        json!({
            "content": format!("bench {run_id} {} {seq} {now}", to.sender),
            "nonce": nonce(run_id, seq),
        })
    };
    let reply = rest.send(&call, Some(&body)).await;
    let end_ns = unix_nanos();
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            bump(&stats.transport, error.kind);
            bump(&stats.errors, format!("{} error", error.kind));
            return None;
        }
    };
    stats
        .rate_limited
        .fetch_add(u64::from(reply.rate_limited), Ordering::Relaxed);
    stats
        .waited_micros
        .fetch_add(reply.waited.as_micros() as u64, Ordering::Relaxed);
    bump(&stats.statuses, reply.status.to_string());
    if !(200..300).contains(&reply.status) {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        if let Some(code) = reply.discord_code() {
            bump(&stats.codes, code.to_string());
        }
        bump(&stats.errors, reply.summary());
        return None;
    }
    stats
        .latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(reply.latency.as_micros() as u64);
    let id = reply
        .body
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok());
    let Some(id) = id else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        bump(&stats.codes, "no_message_id");
        bump(&stats.errors, "answer without a message id");
        return None;
    };
    stats.ok.fetch_add(1, Ordering::Relaxed);
    Some(Posted {
        id,
        guild: to.guild_id,
        channel: to.channel_id,
        start_ns: sent_at.load(Ordering::Relaxed),
        end_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_across_runs_and_fit_discord_s_limit() {
        assert_eq!(nonce("abcdefghij", 0), "abcdefghij0");
        assert_eq!(nonce("abcdefghij", 36 * 36 + 1), "abcdefghij101");
        assert_ne!(nonce("abcdefghij", 7), nonce("abcdefghik", 7));
        assert!(nonce("abcdefghij", u64::MAX).len() <= MAX_NONCE_LEN);
    }
}
