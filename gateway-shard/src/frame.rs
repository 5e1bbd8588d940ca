//! Gateway frames as bytes: dispatches are encoded once per event and completed per session
//! with only their sequence number; other opcodes are constant or tiny.

use std::io::Write;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use concord_core::gateway::EventKind;

/// Start of every dispatch frame, up to the sequence number.
const DISPATCH_HEAD: &[u8] = br#"{"op":0,"s":"#;

/// A dispatch encoded once: everything after the sequence number.
#[derive(Debug)]
pub(crate) struct EncodedEvent {
    #[cfg(test)]
    kind: EventKind,
    /// `,"t":"NAME","d":<data>}`
    tail: Bytes,
}

impl EncodedEvent {
    /// Wraps already-encoded `d` bytes.
    pub(crate) fn new(kind: EventKind, data: &[u8]) -> Arc<Self> {
        let name = kind.name();
        let mut tail = BytesMut::with_capacity(data.len() + name.len() + 16);
        tail.put_slice(br#","t":""#);
        tail.put_slice(name.as_bytes());
        tail.put_slice(br#"","d":"#);
        tail.put_slice(data);
        tail.put_u8(b'}');
        Arc::new(Self {
            #[cfg(test)]
            kind,
            tail: tail.freeze(),
        })
    }

    /// Encodes a server-built value as `d`.
    pub(crate) fn encode<T: serde::Serialize + ?Sized>(kind: EventKind, data: &T) -> Arc<Self> {
        Self::new(kind, &concord_core::json::to_vec(data))
    }

    /// Rebuilds an event from its [`EncodedEvent::tail`] (received over a link).
    pub(crate) fn from_tail(tail: Bytes) -> Arc<Self> {
        Arc::new(Self {
            #[cfg(test)]
            kind: kind_of_tail(&tail),
            tail,
        })
    }

    /// `,"t":"NAME","d":<data>}`: everything after the sequence number.
    pub(crate) fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Event kind.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> EventKind {
        self.kind
    }

    /// Encoded size of the frame without the sequence number.
    pub(crate) fn len(&self) -> usize {
        DISPATCH_HEAD.len() + self.tail.len()
    }
}

/// The kind named in a tail (tests only: the wire carries names, not kinds).
#[cfg(test)]
fn kind_of_tail(tail: &[u8]) -> EventKind {
    let name = tail
        .strip_prefix(br#","t":""#)
        .and_then(|rest| rest.split(|b| *b == b'"').next())
        .unwrap_or_default();
    // MESSAGE_CREATE → "MessageCreate", the variant's serde name.
    let variant: String = String::from_utf8_lossy(name)
        .split('_')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    serde_json::from_value(serde_json::Value::String(variant)).expect("a known event name")
}

/// A dispatch with the sequence number one session gave it.
#[derive(Debug, Clone)]
pub(crate) struct OutFrame {
    /// Sequence number.
    pub(crate) seq: u64,
    /// Shared encoding.
    pub(crate) event: Arc<EncodedEvent>,
}

impl OutFrame {
    /// Writes the complete JSON frame into `buf` (cleared first).
    pub(crate) fn write_json(&self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.reserve(self.event.len() + 20);
        buf.extend_from_slice(DISPATCH_HEAD);
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "{}", self.seq);
        buf.extend_from_slice(&self.event.tail);
    }
}

/// Scratch capacity a connection keeps between writes. A larger frame (a big GUILD_CREATE or
/// member chunk) grows a buffer only for as long as it is being written, so an idle connection
/// does not hold its largest frame ever for the rest of its life.
pub(crate) const RETAINED_SCRATCH: usize = 16 * 1024;

/// Gives back a scratch buffer's capacity beyond [`RETAINED_SCRATCH`]; its contents are spent.
pub(crate) fn release_excess(buf: &mut Vec<u8>) {
    if buf.capacity() > RETAINED_SCRATCH {
        buf.clear();
        buf.shrink_to(RETAINED_SCRATCH);
    }
}

/// Op 11.
pub(crate) const HEARTBEAT_ACK: &[u8] = br#"{"op":11,"d":null,"s":null,"t":null}"#;
/// Op 9 with `d:false`: start over with Identify.
pub(crate) const INVALID_SESSION: &[u8] = br#"{"op":9,"d":false,"s":null,"t":null}"#;
/// Op 7: reconnect and resume.
pub(crate) const RECONNECT: &[u8] = br#"{"op":7,"d":null,"s":null,"t":null}"#;

/// Op 10 with the heartbeat interval in milliseconds.
pub(crate) fn hello(heartbeat_interval_ms: u64) -> Vec<u8> {
    format!(r#"{{"op":10,"d":{{"heartbeat_interval":{heartbeat_interval_ms}}},"s":null,"t":null}}"#)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn dispatch_frames_differ_only_in_seq() {
        let event = EncodedEvent::new(EventKind::MessageCreate, br#"{"id":"1","content":"hi"}"#);
        let mut buf = Vec::new();
        OutFrame {
            seq: 7,
            event: event.clone(),
        }
        .write_json(&mut buf);
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            json!({"op": 0, "s": 7, "t": "MESSAGE_CREATE", "d": {"id": "1", "content": "hi"}})
        );
        OutFrame { seq: 12345, event }.write_json(&mut buf);
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["s"], 12345);
        assert_eq!(v["d"]["content"], "hi");
    }

    #[test]
    fn scratch_buffers_give_back_what_a_big_frame_took() {
        let event = EncodedEvent::new(EventKind::GuildCreate, &vec![b'1'; 512 * 1024]);
        let mut buf = Vec::new();
        OutFrame { seq: 1, event }.write_json(&mut buf);
        assert!(buf.capacity() > 512 * 1024);
        release_excess(&mut buf);
        assert!(buf.capacity() <= RETAINED_SCRATCH, "{}", buf.capacity());
        let mut small = Vec::with_capacity(1024);
        small.push(1);
        release_excess(&mut small);
        assert_eq!(
            (small.capacity(), small.len()),
            (1024, 1),
            "small buffers are kept"
        );
    }

    #[test]
    fn control_frames_are_valid_json() {
        for raw in [HEARTBEAT_ACK, INVALID_SESSION, RECONNECT, &hello(41250)] {
            let v: Value = serde_json::from_slice(raw).unwrap();
            assert!(v["s"].is_null() && v["t"].is_null(), "{v}");
        }
        let v: Value = serde_json::from_slice(&hello(41250)).unwrap();
        assert_eq!(
            v,
            json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null})
        );
        let v: Value = serde_json::from_slice(INVALID_SESSION).unwrap();
        assert_eq!(v["d"], false);
    }
}
