//! [`RedisBus`]: each slot's channel is a Redis Stream (`<p>:{<tag>}:log`), appended with `XADD`
//! and read with `XREAD BLOCK` on a dedicated connection.
//!
//! A stream is pulled, so a slow reader falls behind instead of losing messages (up to the
//! stream's length cap), and a reader that loses its connection resumes after the last entry it
//! delivered. The same reader serves [`NoticeSubscription`], a small stream of cross-process
//! control notices.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use concord_core::bus::{BusError, BusMessage, EventBus, PublishError, ShardId, Subscription};
use concord_core::topology::{SlotId, MAX_SLOT_COUNT};
use futures_util::future::join_all;
use redis::Value;

use crate::codec;
use crate::conn::Redis;
use crate::error::{Error, Result};
use crate::keys::Keys;

/// Entries a slot log keeps (approximately, `MAXLEN ~`) unless configured otherwise.
///
/// A reader that falls further behind than this loses the oldest entries it has not read.
pub const DEFAULT_MAX_LEN: usize = 100_000;

/// Entries the notices stream keeps (approximately).
pub const NOTICES_MAX_LEN: usize = 10_000;

/// Entries fetched per `XREAD`.
pub const READ_COUNT: usize = 512;

/// How long one `XREAD` blocks waiting for new entries, in milliseconds.
pub const READ_BLOCK_MS: u64 = 1_000;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Field holding the payload in every entry.
const FIELD: &str = "m";
/// Entry field holding the publisher's event id (8 bytes, little-endian): an append retried
/// after a timeout (by the driver or the publisher) carries the same id, and readers drop it.
const EVENT_FIELD: &str = "e";
/// Event ids a subscription remembers for de-duplication: retries land within seconds, which
/// is far fewer entries than this at any rate a slot sees.
const RECENT_EVENTS: usize = 65_536;
/// Decoded messages a bus keeps by event id, shared by its subscriptions: a process holding
/// several slots reads an event once per slot, and decodes it once.
const DECODED_EVENTS: usize = 4_096;

/// The Redis event bus.
#[derive(Debug, Clone)]
pub struct RedisBus {
    keys: Keys,
    max_len: usize,
    redis: Redis,
    decoded: Arc<Mutex<DecodedEvents>>,
}

impl RedisBus {
    /// A bus over `redis` for a cluster of `slot_count` slots.
    ///
    /// # Errors
    /// [`Error::InvalidSlotCount`] when `slot_count` is 0 or above [`MAX_SLOT_COUNT`].
    pub fn new(redis: Redis, slot_count: u16) -> Result<Self> {
        if slot_count == 0 || slot_count > MAX_SLOT_COUNT {
            return Err(Error::InvalidSlotCount(slot_count));
        }
        Ok(Self {
            keys: Keys::new(redis.prefix(), slot_count),
            max_len: DEFAULT_MAX_LEN,
            redis,
            decoded: Arc::default(),
        })
    }

    /// The same bus with slot logs capped at about `max_len` entries.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    /// Key names this bus uses.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Subscribes to `slot`'s log from its current end (the concrete form of
    /// [`EventBus::subscribe`]).
    ///
    /// # Errors
    /// [`Error::SlotOutOfRange`], or [`Error::Redis`] when the log's end cannot be read.
    pub async fn subscribe_slot(&self, slot: SlotId) -> Result<LogSubscription> {
        self.keys.check_slot(slot)?;
        Ok(LogSubscription {
            reader: StreamReader::start(self.redis.clone(), self.keys.log(slot)).await?,
            recent: RecentEvents::default(),
            decoded: self.decoded.clone(),
            skipped: 0,
            slot,
        })
    }

    /// Appends a control notice (for example a cache invalidation) to the notices stream.
    ///
    /// # Errors
    /// [`Error::Redis`] when the append fails.
    pub async fn append_notice(&self, notice: &[u8]) -> Result<()> {
        xadd(
            &self.redis,
            self.keys.notices(),
            NOTICES_MAX_LEN,
            notice,
            rand::random(),
        )
        .await?;
        Ok(())
    }

    /// Subscribes to the notices stream from its current end.
    ///
    /// # Errors
    /// [`Error::Redis`] when the stream's end cannot be read.
    pub async fn subscribe_notices(&self) -> Result<NoticeSubscription> {
        Ok(NoticeSubscription {
            reader: StreamReader::start(self.redis.clone(), self.keys.notices()).await?,
        })
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, slots: &[ShardId], message: BusMessage) -> Result<(), BusError> {
        self.publish_event(rand::random(), slots, message)
            .await
            .map_err(|failure| failure.error)
    }

    async fn publish_event(
        &self,
        event: u64,
        slots: &[ShardId],
        message: BusMessage,
    ) -> Result<(), PublishError> {
        for &slot in slots {
            self.keys.check_slot(slot).map_err(|error| PublishError {
                failed: slots.to_vec(),
                error: error.into(),
            })?;
        }
        if slots.is_empty() {
            return Ok(());
        }
        let entry = codec::encode(&message);
        // One XADD per slot, all in flight at once: a cluster client refuses cross-slot
        // pipelines, and concurrent requests are pipelined on each node's connection anyway.
        let appends = slots.iter().map(|&slot| {
            xadd(
                &self.redis,
                self.keys.log(slot),
                self.max_len,
                &entry,
                event,
            )
        });
        let mut failed = Vec::new();
        let mut first_error = None;
        for (&slot, result) in slots.iter().zip(join_all(appends).await) {
            match result {
                Ok(_) => {
                    metrics::counter!("concord_bus_published_total", "bus" => "redis").increment(1);
                }
                Err(error) => {
                    metrics::counter!("concord_bus_publish_errors_total", "bus" => "redis")
                        .increment(1);
                    failed.push(slot);
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(error) => Err(PublishError {
                failed,
                error: error.into(),
            }),
        }
    }

    async fn subscribe(&self, slot: ShardId) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(self.subscribe_slot(slot).await?))
    }
}

async fn xadd(
    redis: &Redis,
    key: String,
    max_len: usize,
    payload: &[u8],
    event: u64,
) -> Result<String> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*")
        .arg(FIELD)
        .arg(payload)
        .arg(EVENT_FIELD)
        .arg(&event.to_le_bytes()[..]);
    redis.query(&cmd).await
}

/// A slot's subscription: the messages appended to its log after it was created, in order.
///
/// Transport failures are retried inside (100 ms backoff doubling to 2 s) and reading resumes
/// after the last entry delivered, so nothing is lost or repeated. Entries that do not decode are
/// skipped with a warning. [`Self::next_message`] is cancel-safe.
pub struct LogSubscription {
    reader: StreamReader,
    recent: RecentEvents,
    decoded: Arc<Mutex<DecodedEvents>>,
    skipped: u64,
    slot: SlotId,
}

fn lock(decoded: &Mutex<DecodedEvents>) -> MutexGuard<'_, DecodedEvents> {
    // Holds only a map and a queue; a poisoned one is still consistent enough to read.
    decoded.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last [`RECENT_EVENTS`] event ids seen, oldest forgotten first.
#[derive(Default)]
struct RecentEvents {
    order: VecDeque<u64>,
    seen: std::collections::HashSet<u64>,
}

impl RecentEvents {
    /// Records `event`; false when it was seen already.
    fn insert(&mut self, event: u64) -> bool {
        if !self.seen.insert(event) {
            return false;
        }
        self.order.push_back(event);
        if self.order.len() > RECENT_EVENTS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// The last [`DECODED_EVENTS`] messages decoded by a bus's subscriptions, by event id. Messages
/// share their payload (`Arc`), so every slot of a process hands its shards the same dispatch,
/// which lets them share its encodings too.
#[derive(Debug, Default)]
struct DecodedEvents {
    order: VecDeque<u64>,
    by_event: std::collections::HashMap<u64, BusMessage>,
}

impl DecodedEvents {
    fn get(&self, event: u64) -> Option<BusMessage> {
        self.by_event.get(&event).cloned()
    }

    fn insert(&mut self, event: u64, message: &BusMessage) {
        if self.by_event.insert(event, message.clone()).is_none() {
            self.order.push_back(event);
            if self.order.len() > DECODED_EVENTS {
                if let Some(old) = self.order.pop_front() {
                    self.by_event.remove(&old);
                }
            }
        }
    }
}

impl LogSubscription {
    /// The next message, waiting as long as it takes.
    pub async fn next_message(&mut self) -> BusMessage {
        loop {
            let (id, payload, event) = self.reader.next_entry().await;
            if let Some(event) = event {
                if !self.recent.insert(event) {
                    metrics::counter!("concord_bus_duplicates_dropped_total", "bus" => "redis")
                        .increment(1);
                    continue;
                }
            }
            if let Some(message) = event.and_then(|e| lock(&self.decoded).get(e)) {
                return message;
            }
            match payload.map(codec::decode) {
                Some(Ok(message)) => {
                    if let Some(event) = event {
                        lock(&self.decoded).insert(event, &message);
                    }
                    return message;
                }
                Some(Err(error)) => self.skip(&id, &error.to_string()),
                None => self.skip(&id, "no payload field"),
            }
        }
    }

    fn skip(&mut self, id: &str, error: &str) {
        self.skipped += 1;
        metrics::counter!("concord_bus_decode_errors_total", "bus" => "redis").increment(1);
        tracing::warn!(
            slot = self.slot,
            id,
            error,
            "skipping undecodable bus entry"
        );
    }

    /// Slot subscribed to.
    pub fn slot(&self) -> SlotId {
        self.slot
    }

    /// Stream id of the last entry delivered or skipped (`0-0` before any).
    pub fn last_id(&self) -> &str {
        &self.reader.last_id
    }

    /// Entries skipped because they did not decode.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Transport errors met (each followed by a reconnect).
    pub fn read_errors(&self) -> u64 {
        self.reader.read_errors
    }
}

#[async_trait]
impl Subscription for LogSubscription {
    async fn next(&mut self) -> Option<BusMessage> {
        Some(self.next_message().await)
    }

    fn position(&self) -> Option<String> {
        Some(self.last_id().to_owned())
    }
}

/// A subscription to the notices stream: the notices appended after it was created, in order,
/// with the same retry and resume behaviour as [`LogSubscription`].
pub struct NoticeSubscription {
    reader: StreamReader,
}

impl NoticeSubscription {
    /// The next notice, waiting as long as it takes. Cancel-safe.
    pub async fn next(&mut self) -> Bytes {
        loop {
            let (id, payload, _) = self.reader.next_entry().await;
            match payload {
                Some(notice) => return notice,
                None => {
                    metrics::counter!("concord_bus_decode_errors_total", "bus" => "redis")
                        .increment(1);
                    tracing::warn!(id, "skipping notice without payload");
                }
            }
        }
    }

    /// Transport errors met (each followed by a reconnect).
    pub fn read_errors(&self) -> u64 {
        self.reader.read_errors
    }
}

/// Reads one stream from a starting id, on a dedicated connection it re-opens after failures.
struct StreamReader {
    backoff: Duration,
    buffer: VecDeque<Entry>,
    conn: Option<Redis>,
    key: String,
    last_id: String,
    read_errors: u64,
    redis: Redis,
}

impl StreamReader {
    /// A reader positioned at the stream's current last entry.
    async fn start(redis: Redis, key: String) -> Result<Self> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
        let last = parse_entries_list(redis.query(&cmd).await?)?;
        let last_id = last
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _, _)| id);
        Ok(Self {
            backoff: BACKOFF_MIN,
            buffer: VecDeque::new(),
            conn: None,
            key,
            last_id,
            read_errors: 0,
            redis,
        })
    }

    /// The next entry after `last_id`, which it then becomes. Cancel-safe: `last_id` only
    /// moves when an entry is handed out, so a dropped read is simply issued again.
    async fn next_entry(&mut self) -> Entry {
        loop {
            if let Some(entry) = self.buffer.pop_front() {
                self.last_id.clone_from(&entry.0);
                return entry;
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let conn = match &self.conn {
            Some(conn) => conn.clone(),
            None => match self.redis.dedicated().await {
                Ok(conn) => {
                    self.conn = Some(conn.clone());
                    conn
                }
                Err(error) => return self.failed(&error).await,
            },
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK_MS)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(&self.last_id);
        match conn.query::<Value>(&cmd).await.and_then(parse_read_reply) {
            Ok(entries) => {
                self.backoff = BACKOFF_MIN;
                let last = parse_id(&self.last_id);
                // XREAD only returns later ids; the check keeps "never repeated" independent of
                // how the driver retries.
                self.buffer
                    .extend(entries.into_iter().filter(|(id, _, _)| parse_id(id) > last));
            }
            Err(error) => {
                self.conn = None;
                self.failed(&error).await;
            }
        }
    }

    async fn failed(&mut self, error: &Error) {
        self.read_errors += 1;
        metrics::counter!("concord_bus_read_errors_total", "bus" => "redis").increment(1);
        tracing::warn!(
            key = %self.key,
            error = %error,
            retry_in_ms = self.backoff.as_millis() as u64,
            "bus read failed, reconnecting"
        );
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// `<ms>-<seq>` as a comparable pair (`None`, below every id, when malformed).
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// A stream entry: its id, its payload field and its event id field, when present.
type Entry = (String, Option<Bytes>, Option<u64>);

/// An `XREAD` reply for one stream: nil on timeout, else `[[key, [entry...]]]` (RESP2) or
/// `{key: [entry...]}` (RESP3).
fn parse_read_reply(reply: Value) -> Result<Vec<Entry>> {
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.swap_remove(1)),
                other => Err(unexpected("XREAD stream", &other)),
            })
            .collect::<Result<_>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        other => return Err(unexpected("XREAD reply", &other)),
    };
    let mut out = Vec::new();
    for entries in streams {
        out.extend(parse_entries_list(entries)?);
    }
    Ok(out)
}

/// `[[id, [field, value, ...]], ...]`, as `XRANGE`/`XREVRANGE`/`XREAD` return entries.
fn parse_entries_list(entries: Value) -> Result<Vec<Entry>> {
    match entries {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => entries.into_iter().map(parse_entry).collect(),
        other => Err(unexpected("stream entries", &other)),
    }
}

fn parse_entry(entry: Value) -> Result<Entry> {
    let Value::Array(parts) = entry else {
        return Err(unexpected("stream entry", &entry));
    };
    let mut parts = parts.into_iter();
    let id = match parts.next() {
        Some(Value::BulkString(id)) => {
            String::from_utf8(id).map_err(|_| Error::Reply("stream id is not UTF-8".to_owned()))?
        }
        Some(Value::SimpleString(id)) => id,
        other => return Err(Error::Reply(format!("stream entry id: {other:?}"))),
    };
    let fields: Vec<(Value, Value)> = match parts.next() {
        Some(Value::Array(flat)) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(field), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((field, value));
            }
            pairs
        }
        Some(Value::Map(pairs)) => pairs,
        _ => Vec::new(),
    };
    let mut payload = None;
    let mut event = None;
    for (field, value) in fields {
        if let (Value::BulkString(f), Value::BulkString(v)) = (field, value) {
            if f == FIELD.as_bytes() {
                payload = Some(Bytes::from(v));
            } else if f == EVENT_FIELD.as_bytes() {
                event = <[u8; 8]>::try_from(v.as_slice())
                    .ok()
                    .map(u64::from_le_bytes);
            }
        }
    }
    Ok((id, payload, event))
}

fn unexpected(what: &str, value: &Value) -> Error {
    let mut shown = format!("{value:?}");
    shown.truncate(200);
    Error::Reply(format!("{what}: {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    fn entry(id: &str, fields: Vec<Value>) -> Value {
        Value::Array(vec![bulk(id.as_bytes()), Value::Array(fields)])
    }

    #[test]
    fn read_replies_parse() {
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"k"),
            Value::Array(vec![
                entry("1-0", vec![bulk(b"m"), bulk(b"abc")]),
                entry("1-1", vec![bulk(b"x"), bulk(b"y")]),
            ]),
        ])]);
        assert_eq!(
            parse_read_reply(reply).unwrap(),
            vec![
                ("1-0".to_owned(), Some(Bytes::from_static(b"abc")), None),
                ("1-1".to_owned(), None, None)
            ]
        );
        let resp3 = Value::Map(vec![(
            bulk(b"k"),
            Value::Array(vec![entry(
                "2-5",
                vec![bulk(b"m"), bulk(b""), bulk(b"e"), bulk(&7u64.to_le_bytes())],
            )]),
        )]);
        assert_eq!(
            parse_read_reply(resp3).unwrap(),
            vec![("2-5".to_owned(), Some(Bytes::new()), Some(7))]
        );
        assert!(parse_read_reply(Value::Int(3)).is_err());
        assert!(parse_read_reply(Value::Array(vec![Value::Int(3)])).is_err());
    }

    #[test]
    fn recent_events_drop_repeats_and_forget_the_oldest() {
        let mut recent = RecentEvents::default();
        assert!(recent.insert(1));
        assert!(!recent.insert(1));
        for e in 2..=(RECENT_EVENTS as u64 + 1) {
            assert!(recent.insert(e));
        }
        assert!(recent.insert(1), "forgotten after RECENT_EVENTS newer ones");
    }

    #[test]
    fn ids_compare_numerically() {
        assert!(parse_id("10-0") > parse_id("9-99"));
        assert!(parse_id("5-10") > parse_id("5-9"));
        assert!(parse_id("0-1") > parse_id("0-0"));
        assert_eq!(parse_id("junk"), None);
        assert!(parse_id("0-0") > None);
    }
}
