//! Binary encoding of a [`BusMessage`] as stored in a slot log entry.
//!
//! A dispatch carries one or two large pre-encoded payloads, so it is stored as
//! `b'D'`, a little-endian `u32` header length, a JSON header with every other field and the
//! payload lengths, then the raw `data` bytes and the raw `data_without_content` bytes: no base64
//! or JSON array blow-up, and decoding slices the payloads out of the entry without copying.
//! Every other variant is small: `b'C'` followed by the message's JSON.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use concord_core::bus::{BusMessage, ChannelAccess, Dispatch};
use concord_core::gateway::event::EventKind;
use concord_core::id::{GuildId, UserId};
use concord_core::json;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const TAG_DISPATCH: u8 = b'D';
const TAG_CONTROL: u8 = b'C';

/// Everything in a [`Dispatch`] but its payloads.
#[derive(Serialize)]
struct HeaderRef<'a> {
    access: &'a Option<ChannelAccess>,
    content_exempt: &'a [UserId],
    data_len: usize,
    data_without_content_len: Option<usize>,
    guild_id: Option<GuildId>,
    kind: EventKind,
    user_id: Option<UserId>,
}

#[derive(Deserialize)]
struct Header {
    access: Option<ChannelAccess>,
    content_exempt: Vec<UserId>,
    data_len: usize,
    data_without_content_len: Option<usize>,
    guild_id: Option<GuildId>,
    kind: EventKind,
    user_id: Option<UserId>,
}

/// Encodes `message` for a log entry.
pub fn encode(message: &BusMessage) -> Bytes {
    match message {
        BusMessage::Dispatch(d) => {
            let without = d.data_without_content.as_ref();
            let header = json::to_vec(&HeaderRef {
                access: &d.access,
                content_exempt: &d.content_exempt,
                data_len: d.data.len(),
                data_without_content_len: without.map(Bytes::len),
                guild_id: d.guild_id,
                kind: d.kind,
                user_id: d.user_id,
            });
            let total = 5 + header.len() + d.data.len() + without.map_or(0, Bytes::len);
            let mut out = BytesMut::with_capacity(total);
            out.put_u8(TAG_DISPATCH);
            // A header is a few hundred bytes; 4 GiB would need millions of overwrites.
            out.put_u32_le(header.len() as u32);
            out.put_slice(&header);
            out.put_slice(&d.data);
            if let Some(w) = without {
                out.put_slice(w);
            }
            out.freeze()
        }
        other => {
            let body = json::to_vec(other);
            let mut out = BytesMut::with_capacity(1 + body.len());
            out.put_u8(TAG_CONTROL);
            out.put_slice(&body);
            out.freeze()
        }
    }
}

/// Decodes a log entry; the dispatch payloads share `entry`'s buffer.
///
/// # Errors
/// [`Error::Decode`] when the entry is truncated, has trailing bytes, an unknown tag or a header
/// that is not the expected JSON.
pub fn decode(entry: Bytes) -> Result<BusMessage> {
    let (&tag, rest) = entry
        .split_first()
        .ok_or_else(|| decode_error("empty entry"))?;
    match tag {
        TAG_CONTROL => {
            let mut body = rest.to_vec();
            json::from_slice(&mut body).map_err(|e| Error::Decode(e.to_string()))
        }
        TAG_DISPATCH => {
            let len_bytes: [u8; 4] = rest
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| decode_error("truncated header length"))?;
            let header_len = u32::from_le_bytes(len_bytes) as usize;
            let header_end = 5usize
                .checked_add(header_len)
                .filter(|end| *end <= entry.len())
                .ok_or_else(|| decode_error("truncated header"))?;
            let mut header_bytes = entry[5..header_end].to_vec();
            let header: Header =
                json::from_slice(&mut header_bytes).map_err(|e| Error::Decode(e.to_string()))?;
            let data_end = header_end
                .checked_add(header.data_len)
                .filter(|end| *end <= entry.len())
                .ok_or_else(|| decode_error("truncated data"))?;
            let end = data_end
                .checked_add(header.data_without_content_len.unwrap_or(0))
                .ok_or_else(|| decode_error("payload length overflows"))?;
            if end != entry.len() {
                return Err(decode_error("payload lengths do not match the entry size"));
            }
            Ok(BusMessage::Dispatch(Arc::new(Dispatch {
                access: header.access,
                content_exempt: header.content_exempt,
                data: entry.slice(header_end..data_end),
                data_without_content: header
                    .data_without_content_len
                    .map(|_| entry.slice(data_end..end)),
                guild_id: header.guild_id,
                kind: header.kind,
                user_id: header.user_id,
            })))
        }
        other => Err(Error::Decode(format!("unknown tag byte {other:#04x}"))),
    }
}

fn decode_error(reason: &str) -> Error {
    Error::Decode(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::bus::CloseCodeWire;
    use concord_core::id::Id;
    use concord_core::model::channel::{ChannelType, OverwriteType, PermissionOverwrite};
    use concord_core::permissions::Permissions;

    fn dispatch(without: Option<&'static [u8]>, access: bool) -> BusMessage {
        BusMessage::Dispatch(Arc::new(Dispatch {
            access: access.then(|| ChannelAccess {
                kind: ChannelType::GuildText,
                owner_id: Id::new(1),
                overwrites: vec![PermissionOverwrite {
                    allow: Permissions::SEND_MESSAGES,
                    deny: Permissions::VIEW_CHANNEL,
                    id: Id::new(7),
                    kind: OverwriteType::Role,
                }],
                required: Permissions::VIEW_CHANNEL,
                roles: vec![(Id::new(7), Permissions::VIEW_CHANNEL)],
            }),
            content_exempt: vec![Id::new(5), Id::new(6)],
            data: Bytes::from_static(br#"{"content":"hi \u00e9","id":"1"}"#),
            data_without_content: without.map(Bytes::from_static),
            guild_id: Some(Id::new(9)),
            kind: EventKind::MessageCreate,
            user_id: None,
        }))
    }

    fn all_variants() -> Vec<BusMessage> {
        vec![
            dispatch(Some(br#"{"content":"","id":"1"}"#), true),
            dispatch(None, false),
            dispatch(Some(b""), false),
            BusMessage::Dispatch(Arc::new(Dispatch {
                access: None,
                content_exempt: vec![],
                data: Bytes::new(),
                data_without_content: None,
                guild_id: None,
                kind: EventKind::Ready,
                user_id: Some(Id::new(3)),
            })),
            BusMessage::GuildJoined {
                guild_id: Id::new(1),
                user_id: Id::new(2),
            },
            BusMessage::GuildLeft {
                guild_id: Id::new(3),
                user_id: Id::new(4),
            },
            BusMessage::GuildRemoved {
                guild_id: Id::new(5),
            },
            BusMessage::CloseUserSessions {
                code: CloseCodeWire(4004),
                user_id: Id::new(6),
            },
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for message in all_variants() {
            let bytes = encode(&message);
            assert_eq!(decode(bytes).unwrap(), message);
        }
    }

    #[test]
    fn dispatch_payloads_are_stored_raw() {
        let message = dispatch(Some(b"WITHOUT"), false);
        let bytes = encode(&message);
        assert_eq!(bytes[0], b'D');
        let header_len = u32::from_le_bytes(bytes[1..5].try_into().unwrap()) as usize;
        let tail = &bytes[5 + header_len..];
        assert_eq!(tail, &br#"{"content":"hi \u00e9","id":"1"}WITHOUT"#[..]);
        let header: serde_json::Value = serde_json::from_slice(&bytes[5..5 + header_len]).unwrap();
        assert!(header.get("data").is_none());
        assert_eq!(header["data_without_content_len"], 7);
        assert_eq!(encode(&all_variants()[4])[0], b'C');
    }

    #[test]
    fn malformed_entries_are_errors() {
        let good = encode(&dispatch(Some(b"abc"), true));
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            b"X{}".to_vec(),
            b"C".to_vec(),
            b"C{\"GuildRemoved\":{}}".to_vec(),
            b"D\x01\x00".to_vec(),
            b"D\xff\xff\xff\xff{}".to_vec(),
            b"D\x02\x00\x00\x00{}".to_vec(),
            [&good[..], b"x"].concat(),
        ];
        for cut in [1, 5, 20, good.len() - 1] {
            cases.push(good[..cut].to_vec());
        }
        for case in cases {
            assert!(decode(Bytes::from(case.clone())).is_err(), "{case:?}");
        }
    }
}
