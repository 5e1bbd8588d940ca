//! The gateway payloads the bench reads (borrowing from the frame, so a delivery costs one
//! parse) and the commands it sends.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT.
pub const DEFAULT_INTENTS: u64 = 1 | (1 << 9) | (1 << 15);

pub(crate) const OP_DISPATCH: u8 = 0;
pub(crate) const OP_HEARTBEAT: u8 = 1;
pub(crate) const OP_RECONNECT: u8 = 7;
pub(crate) const OP_INVALID_SESSION: u8 = 9;
pub(crate) const OP_HELLO: u8 = 10;
pub(crate) const OP_HEARTBEAT_ACK: u8 = 11;

/// Any gateway payload, with `d` left unparsed.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<'a> {
    pub(crate) op: u8,
    #[serde(default)]
    pub(crate) s: Option<u64>,
    #[serde(default, borrow)]
    pub(crate) t: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) d: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Hello {
    pub(crate) heartbeat_interval: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Ready<'a> {
    pub(crate) session_id: String,
    #[serde(default)]
    pub(crate) resume_gateway_url: Option<String>,
    #[serde(default, borrow)]
    pub(crate) guilds: Vec<ReadyGuild<'a>>,
}

/// A guild in READY: unavailable (a bot's, or any guild Discord cannot serve yet; its
/// GUILD_CREATE follows) or complete (a user account's, sent whole in READY).
#[derive(Debug, Deserialize)]
pub(crate) struct ReadyGuild<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(default)]
    pub(crate) unavailable: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IdOnly<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageCreate<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) content: Cow<'a, str>,
}

/// Op 2 Identify.
pub(crate) fn identify(token: &str, intents: u64) -> Vec<u8> {
    serde_json::json!({
        "op": 2,
        "d": {
            "token": token,
            "intents": intents,
            "large_threshold": 250,
            "properties": {"os": std::env::consts::OS, "browser": "concord-bench", "device": "concord-bench"},
        }
    })
    .to_string()
    .into_bytes()
}

/// Op 6 Resume.
pub(crate) fn resume(token: &str, session_id: &str, seq: Option<u64>) -> Vec<u8> {
    serde_json::json!({
        "op": 6,
        "d": {"token": token, "session_id": session_id, "seq": seq}
    })
    .to_string()
    .into_bytes()
}

/// Op 1 Heartbeat with the last sequence number seen.
pub(crate) fn heartbeat(seq: Option<u64>) -> Vec<u8> {
    match seq {
        Some(s) => format!(r#"{{"op":1,"d":{s}}}"#).into_bytes(),
        None => br#"{"op":1,"d":null}"#.to_vec(),
    }
}

/// Reads a bench message's content, `bench <run_id> <sender> <seq> <unix_nanos>`, given the
/// `bench <run_id> ` prefix: returns (sender, seq, send time in unix nanoseconds).
pub fn parse_content(content: &str, prefix: &str) -> Option<(u32, u64, u64)> {
    let mut fields = content.strip_prefix(prefix)?.split(' ');
    let sender = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let nanos = fields.next()?.parse().ok()?;
    Some((sender, seq, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dispatches_without_copying_their_data() {
        let frame = br#"{"op":0,"s":42,"t":"MESSAGE_CREATE","d":{"id":"123","channel_id":"9","content":"bench r1 3 7 1000","author":{"id":"5"}}}"#;
        let env: Envelope<'_> = serde_json::from_slice(frame).unwrap();
        assert_eq!(
            (env.op, env.s, env.t.as_deref()),
            (0, Some(42), Some("MESSAGE_CREATE"))
        );
        let m: MessageCreate<'_> = serde_json::from_str(env.d.unwrap().get()).unwrap();
        assert_eq!(m.id, "123");
        assert_eq!(parse_content(&m.content, "bench r1 "), Some((3, 7, 1000)));
        assert_eq!(parse_content(&m.content, "bench r2 "), None);
        let ack: Envelope<'_> = serde_json::from_slice(br#"{"op":11,"d":null}"#).unwrap();
        assert!(ack.d.is_none() && ack.s.is_none());
    }

    #[test]
    fn ready_lists_guild_ids() {
        let ready: Ready<'_> = serde_json::from_str(
            r#"{"session_id":"abc","resume_gateway_url":"ws://127.0.0.1:1","guilds":[{"id":"1","unavailable":true}],"user":{}}"#,
        )
        .unwrap();
        assert_eq!(ready.guilds[0].id, "1");
        assert!(ready.guilds[0].unavailable);
        // A user account's READY: complete guild objects, no `unavailable`.
        let ready: Ready<'_> = serde_json::from_str(
            r#"{"session_id":"abc","guilds":[{"id":"2","name":"g","channels":[{"id":"3","type":0}],"unavailable":false},{"id":"4","name":"h"}]}"#,
        )
        .unwrap();
        assert!(ready.guilds.iter().all(|g| !g.unavailable));
        assert_eq!(heartbeat(Some(5)), br#"{"op":1,"d":5}"#);
        let identify: serde_json::Value =
            serde_json::from_slice(&identify("t", DEFAULT_INTENTS)).unwrap();
        assert_eq!(identify["d"]["intents"], 33281);
    }
}
