//! Sessions: sequence numbers, the replay buffer, guild subscriptions with the member's roles,
//! and the link to whichever connection currently writes the session's frames.
//!
//! Each session's state sits behind a std mutex held only for short, non-async sections; it is
//! always the innermost lock (nothing else is locked while holding it).

mod filter;
mod id;
mod replay;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use concord_core::bus::Dispatch;
use concord_core::gateway::Intents;
use concord_core::id::{GuildId, RoleId, UserId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};

use crate::error::Error;
use crate::frame::{EncodedEvent, OutFrame};
use filter::Recipient;
use replay::ReplayBuffer;

pub(crate) use filter::{client_shard_wants, EncodeCache, SharedEncodings};
pub use id::SessionId;

/// A message from the shard to the connection serving a session.
#[derive(Debug)]
pub(crate) enum Control {
    /// Close the socket with this error's code.
    Close(Error),
}

/// The connection side of a session: where its frames go.
#[derive(Debug)]
pub(crate) struct Link {
    /// Connection number, unique in this process, so a superseded connection cannot detach
    /// its successor.
    pub(crate) id: u64,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    /// A connection task of this process.
    Local {
        frames: mpsc::Sender<OutFrame>,
        /// A oneshot: a link is told to close at most once, and is taken from the session to
        /// be told.
        control: oneshot::Sender<Control>,
    },
    /// A connection on a router, reached over the router's multiplexed link as `conn`.
    Remote {
        peer: Arc<dyn RemoteSink>,
        conn: u64,
    },
}

/// Why a frame could not be handed to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkError {
    /// The connection's queue (or its link's) is full.
    Full,
    /// The connection is gone.
    Closed,
}

/// A router link as seen by the sessions it serves (implemented by the link server).
pub(crate) trait RemoteSink: Send + Sync + std::fmt::Debug {
    /// Queues one sequenced frame for connection `conn`.
    fn frame(&self, conn: u64, frame: OutFrame) -> Result<(), SinkError>;
    /// Queues the frames a connection writes first (READY's burst, or a resume's replay)
    /// together with the news that the session is attached; never refused.
    fn opened(&self, conn: u64, frames: Vec<OutFrame>);
    /// Tells connection `conn` to close with `code`; never refused.
    fn close(&self, conn: u64, code: u16);
}

impl Link {
    /// A link to a connection task of this process.
    pub(crate) fn local(
        id: u64,
        frames: mpsc::Sender<OutFrame>,
        control: oneshot::Sender<Control>,
    ) -> Self {
        Self {
            id,
            sink: Sink::Local { frames, control },
        }
    }

    /// A link to connection `conn` behind a router link.
    pub(crate) fn remote(id: u64, peer: Arc<dyn RemoteSink>, conn: u64) -> Self {
        Self {
            id,
            sink: Sink::Remote { peer, conn },
        }
    }

    fn send(&self, frame: OutFrame) -> Result<(), SinkError> {
        match &self.sink {
            Sink::Local { frames, .. } => frames.try_send(frame).map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => SinkError::Full,
                mpsc::error::TrySendError::Closed(_) => SinkError::Closed,
            }),
            Sink::Remote { peer, conn } => peer.frame(*conn, frame),
        }
    }

    /// Tells the connection to close with `error`'s code.
    pub(crate) fn close(self, error: Error) {
        match self.sink {
            Sink::Local { control, .. } => {
                let _ = control.send(Control::Close(error));
            }
            Sink::Remote { peer, conn } => {
                peer.close(conn, error.link_close_code());
            }
        }
    }

    /// Hands over the frames the connection must write first. A local connection gets them
    /// back to write itself; a remote one gets them queued now, while the session's lock is
    /// held, so that no later frame can overtake them on the shared link.
    fn hand_over(&self, frames: Vec<OutFrame>) -> Vec<OutFrame> {
        match &self.sink {
            Sink::Local { .. } => frames,
            Sink::Remote { peer, conn } => {
                peer.opened(*conn, frames);
                Vec::new()
            }
        }
    }
}

/// Something that arrived while the session was still loading its READY.
#[derive(Debug)]
enum Pending {
    Dispatch {
        dispatch: Arc<Dispatch>,
        subject: Option<UserId>,
    },
    Event(Arc<EncodedEvent>),
}

#[derive(Debug)]
struct State {
    seq: u64,
    replay: ReplayBuffer,
    guilds: HashMap<GuildId, Vec<RoleId>>,
    /// `Some` until READY is assigned sequence 1; holds what arrived meanwhile.
    loading: Option<Vec<Pending>>,
    link: Option<Link>,
    detached_at: Option<Instant>,
    /// Set once the session is dropped; the code is the server's close code, if any.
    closed: Option<Option<u16>>,
}

/// What happened to an offered dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Not for this session.
    Skipped,
    /// Given a sequence number (and sent, when a connection is attached).
    Sequenced,
    /// Kept until READY is out.
    Deferred,
}

/// One gateway session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) user_id: UserId,
    pub(crate) intents: Intents,
    pub(crate) client_shard: Option<[u32; 2]>,
    /// Member count above which its guilds count as large.
    pub(crate) large_threshold: u32,
    /// Id of the token the session identified with: revoking it closes the session.
    pub(crate) token_id: u64,
    state: Mutex<State>,
}

impl Session {
    /// A session in the loading phase: it collects events until [`Session::go_live`].
    pub(crate) fn new(
        id: SessionId,
        user_id: UserId,
        intents: Intents,
        client_shard: Option<[u32; 2]>,
        large_threshold: u32,
        replay_capacity: usize,
    ) -> Self {
        Self {
            id,
            user_id,
            intents,
            client_shard,
            large_threshold,
            token_id: 0,
            state: Mutex::new(State {
                seq: 0,
                replay: ReplayBuffer::new(replay_capacity),
                guilds: HashMap::new(),
                loading: Some(Vec::new()),
                link: None,
                detached_at: None,
                closed: None,
            }),
        }
    }

    /// The same session, identified with token `token_id`.
    pub(crate) fn with_token(mut self, token_id: u64) -> Self {
        self.token_id = token_id;
        self
    }

    /// Records the client's heartbeat sequence: frames up to it (never beyond what was sent)
    /// leave the replay buffer.
    pub(crate) fn acknowledge(&self, seq: u64) {
        let mut state = self.lock();
        let through = seq.min(state.seq);
        state.replay.acknowledge(through);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state (counters and queues),
        // and the gateway must keep serving the session's other readers.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the session handles events of `guild` given its Identify `shard`.
    pub(crate) fn wants_guild(&self, guild: GuildId) -> bool {
        client_shard_wants(self.client_shard, Some(guild))
    }

    /// Offers a bus dispatch: filters it for this session and sequences it.
    pub(crate) fn offer(
        &self,
        dispatch: &Arc<Dispatch>,
        subject: Option<UserId>,
        cache: &mut EncodeCache<'_>,
    ) -> Offer {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Offer::Skipped;
        }
        if let Some(pending) = &mut state.loading {
            pending.push(Pending::Dispatch {
                dispatch: dispatch.clone(),
                subject,
            });
            return Offer::Deferred;
        }
        let recipient = self.recipient(&state.guilds);
        let Some(variant) = filter::select(&recipient, dispatch, subject) else {
            return Offer::Skipped;
        };
        let event = cache.get(variant);
        push(&mut state, event);
        Offer::Sequenced
    }

    /// Sequences an event built for this session (GUILD_CREATE on join, member chunks).
    pub(crate) fn push_event(&self, event: Arc<EncodedEvent>) -> Offer {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Offer::Skipped;
        }
        if let Some(pending) = &mut state.loading {
            pending.push(Pending::Event(event));
            return Offer::Deferred;
        }
        push(&mut state, event);
        Offer::Sequenced
    }

    fn recipient<'a>(&self, guilds: &'a HashMap<GuildId, Vec<RoleId>>) -> Recipient<'a> {
        Recipient {
            user_id: self.user_id,
            intents: self.intents,
            client_shard: self.client_shard,
            guilds,
        }
    }

    /// Subscribes to a guild; false when already subscribed or closed.
    pub(crate) fn add_guild(&self, guild: GuildId, roles: Vec<RoleId>) -> bool {
        let mut state = self.lock();
        if state.closed.is_some() || state.guilds.contains_key(&guild) {
            return false;
        }
        state.guilds.insert(guild, roles);
        true
    }

    /// Unsubscribes from a guild; false when not subscribed.
    pub(crate) fn remove_guild(&self, guild: GuildId) -> bool {
        self.lock().guilds.remove(&guild).is_some()
    }

    /// Whether the session is subscribed to `guild`.
    pub(crate) fn in_guild(&self, guild: GuildId) -> bool {
        self.lock().guilds.contains_key(&guild)
    }

    /// Records the member's new roles in a subscribed guild.
    pub(crate) fn set_roles(&self, guild: GuildId, roles: &[RoleId]) {
        if let Some(held) = self.lock().guilds.get_mut(&guild) {
            held.clear();
            held.extend_from_slice(roles);
        }
    }

    /// Ends the loading phase: READY takes sequence 1, then each guild's GUILD_CREATE, then
    /// whatever arrived meanwhile; the connection is attached in the same step so nothing
    /// is sent out of order. Returns the frames for the connection to write first.
    ///
    /// # Errors
    /// When the session was closed by the server while loading.
    pub(crate) fn go_live(
        &self,
        ready: Arc<EncodedEvent>,
        guilds: Vec<(GuildId, Vec<RoleId>, Arc<EncodedEvent>)>,
        link: Link,
    ) -> Result<Vec<OutFrame>, Error> {
        let mut state = self.lock();
        if let Some(code) = state.closed {
            return Err(code.map_or(Error::Reconnect, Error::ClosedByServer));
        }
        let pending = state.loading.take().unwrap_or_default();
        let mut frames = Vec::with_capacity(1 + guilds.len() + pending.len());
        frames.push(sequence(&mut state, ready));
        for (guild, roles, create) in guilds {
            // A leave while loading removed the subscription; its GUILD_CREATE is moot then.
            let Some(held) = state.guilds.get_mut(&guild) else {
                continue;
            };
            *held = roles;
            frames.push(sequence(&mut state, create));
        }
        for item in pending {
            let event = match item {
                Pending::Event(event) => event,
                Pending::Dispatch { dispatch, subject } => {
                    let recipient = self.recipient(&state.guilds);
                    let Some(variant) = filter::select(&recipient, &dispatch, subject) else {
                        continue;
                    };
                    EncodeCache::new(&dispatch).get(variant)
                }
            };
            frames.push(sequence(&mut state, event));
        }
        let frames = link.hand_over(frames);
        state.link = Some(link);
        state.detached_at = None;
        Ok(frames)
    }

    /// Moves the session onto a new connection: checks `after` against the replay buffer,
    /// closes any previous connection, sequences RESUMED and returns every frame after
    /// `after` followed by RESUMED. `None` when the session cannot be resumed from `after`.
    pub(crate) fn resume(
        &self,
        after: u64,
        resumed: Arc<EncodedEvent>,
        link: Link,
    ) -> Option<Vec<OutFrame>> {
        let mut state = self.lock();
        if state.closed.is_some() || state.loading.is_some() {
            return None;
        }
        let mut frames = state.replay.after(after, state.seq)?;
        if let Some(previous) = state.link.take() {
            previous.close(Error::SessionTakenOver);
        }
        frames.push(sequence(&mut state, resumed));
        let frames = link.hand_over(frames);
        state.link = Some(link);
        state.detached_at = None;
        Some(frames)
    }

    /// Detaches connection `conn` if it is still the session's; the resume window starts.
    pub(crate) fn detach(&self, conn: u64, now: Instant) {
        let mut state = self.lock();
        if state.link.as_ref().is_some_and(|link| link.id == conn) {
            state.link = None;
            state.detached_at = Some(now);
        }
    }

    /// Marks the session dropped by the server (`code` = the close code its connection gets);
    /// returns its guilds (to release interest) and its connection.
    pub(crate) fn close(&self, code: Option<u16>) -> (Vec<GuildId>, Option<Link>) {
        let mut state = self.lock();
        let guilds = close_locked(&mut state, code);
        (guilds, state.link.take())
    }

    /// Drops the session if connection `conn` still serves it (the client ended it with
    /// 1000/1001, or a fatal close); `None` when another connection took it over meanwhile.
    pub(crate) fn close_if_linked(&self, conn: u64) -> Option<Vec<GuildId>> {
        let mut state = self.lock();
        if state.link.as_ref().is_none_or(|link| link.id != conn) {
            return None;
        }
        state.link = None;
        Some(close_locked(&mut state, None))
    }

    /// Drops the session if its socket has been gone longer than `window`. Checked and done
    /// under one lock so a resume cannot slip in between.
    pub(crate) fn close_if_expired(&self, now: Instant, window: Duration) -> Option<Vec<GuildId>> {
        let mut state = self.lock();
        let expired = state.closed.is_none()
            && state.link.is_none()
            && state
                .detached_at
                .is_some_and(|at| now.saturating_duration_since(at) >= window);
        expired.then(|| close_locked(&mut state, None))
    }
}

fn close_locked(state: &mut State, code: Option<u16>) -> Vec<GuildId> {
    state.closed = Some(code);
    state.loading = None;
    state.guilds.drain().map(|(guild, _)| guild).collect()
}

/// Gives `event` the next sequence number and records it for replay.
fn sequence(state: &mut State, event: Arc<EncodedEvent>) -> OutFrame {
    state.seq += 1;
    let frame = OutFrame {
        seq: state.seq,
        event,
    };
    state.replay.push(frame.clone());
    frame
}

/// Sequences `event` and hands it to the attached connection. A connection whose queue is
/// full is cut loose and told to close with a reconnectable code: the frame stays in the
/// replay buffer, so the client's resume loses nothing, and memory stays bounded.
fn push(state: &mut State, event: Arc<EncodedEvent>) {
    let frame = sequence(state, event);
    let Some(link) = &state.link else { return };
    match link.send(frame) {
        Ok(()) => {}
        Err(SinkError::Full) => {
            if let Some(link) = state.link.take() {
                link.close(Error::SlowConsumer);
            }
            state.detached_at = Some(Instant::now());
        }
        Err(SinkError::Closed) => {
            state.link = None;
            state.detached_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::gateway::EventKind;
    use concord_core::id::Id;

    fn link(
        id: u64,
        capacity: usize,
    ) -> (Link, mpsc::Receiver<OutFrame>, oneshot::Receiver<Control>) {
        let (frames, frames_rx) = mpsc::channel(capacity);
        let (control, control_rx) = oneshot::channel();
        (Link::local(id, frames, control), frames_rx, control_rx)
    }

    fn event() -> Arc<EncodedEvent> {
        EncodedEvent::new(EventKind::MessageCreate, b"{}")
    }

    fn live_session(
        capacity: usize,
    ) -> (
        Session,
        mpsc::Receiver<OutFrame>,
        oneshot::Receiver<Control>,
    ) {
        let session = Session::new(
            SessionId::generate(0),
            Id::new(5),
            Intents::all(),
            None,
            50,
            capacity,
        );
        let (link, rx, control) = link(1, 64);
        let ready = EncodedEvent::new(EventKind::Ready, b"{}");
        let first = session.go_live(ready, Vec::new(), link).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].seq, 1);
        (session, rx, control)
    }

    #[test]
    fn events_during_loading_follow_ready_and_guild_creates() {
        let guild = Id::new(9);
        let session = Session::new(
            SessionId::generate(0),
            Id::new(5),
            Intents::all(),
            None,
            50,
            16,
        );
        assert!(session.add_guild(guild, Vec::new()));
        assert_eq!(session.push_event(event()), Offer::Deferred);
        let (link, _rx, _control) = link(1, 8);
        let create = EncodedEvent::new(EventKind::GuildCreate, b"{}");
        let frames = session
            .go_live(
                EncodedEvent::new(EventKind::Ready, b"{}"),
                vec![(guild, Vec::new(), create)],
                link,
            )
            .unwrap();
        let kinds: Vec<_> = frames.iter().map(|f| (f.seq, f.event.kind())).collect();
        assert_eq!(
            kinds,
            vec![
                (1, EventKind::Ready),
                (2, EventKind::GuildCreate),
                (3, EventKind::MessageCreate)
            ]
        );
    }

    #[test]
    fn resume_replays_and_takes_over() {
        let (session, mut rx, mut old_control) = live_session(16);
        for _ in 0..3 {
            assert_eq!(session.push_event(event()), Offer::Sequenced);
        }
        assert_eq!(rx.try_recv().unwrap().seq, 2);
        let (new_link, _new_rx, _new_control) = link(2, 8);
        let frames = session
            .resume(2, EncodedEvent::new(EventKind::Resumed, b"{}"), new_link)
            .unwrap();
        let seqs: Vec<_> = frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(frames[2].event.kind(), EventKind::Resumed);
        assert!(matches!(
            old_control.try_recv(),
            Ok(Control::Close(Error::SessionTakenOver))
        ));
        // The old connection's end must not detach the new one.
        session.detach(1, Instant::now());
        assert!(session
            .close_if_expired(Instant::now() + Duration::from_secs(3600), Duration::ZERO)
            .is_none());
    }

    #[test]
    fn heartbeat_acknowledgement_trims_replay_but_keeps_what_the_client_lacks() {
        let (session, _rx, _control) = live_session(16);
        for _ in 0..4 {
            session.push_event(event());
        }
        session.acknowledge(3);
        let (new_link, _a, _b) = link(2, 8);
        let frames = session
            .resume(3, EncodedEvent::new(EventKind::Resumed, b"{}"), new_link)
            .unwrap();
        assert_eq!(
            frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );

        // An acknowledgement past what was sent only clears what was sent.
        let (session, _rx, _control) = live_session(16);
        session.push_event(event());
        session.acknowledge(99);
        session.push_event(event());
        let (new_link, _a, _b) = link(2, 8);
        let frames = session
            .resume(2, EncodedEvent::new(EventKind::Resumed, b"{}"), new_link)
            .unwrap();
        assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![3, 4]);
        let (new_link, _a, _b) = link(3, 8);
        assert!(session
            .resume(1, EncodedEvent::new(EventKind::Resumed, b"{}"), new_link)
            .is_none());
    }

    #[test]
    fn resume_outside_the_buffer_is_refused() {
        let (session, _rx, _control) = live_session(2);
        for _ in 0..5 {
            session.push_event(event());
        }
        let (new_link, _a, _b) = link(2, 8);
        assert!(session
            .resume(1, EncodedEvent::new(EventKind::Resumed, b"{}"), new_link)
            .is_none());
        let (new_link, _a, _b) = link(3, 8);
        assert!(session
            .resume(99, EncodedEvent::new(EventKind::Resumed, b"{}"), new_link)
            .is_none());
    }

    #[test]
    fn a_full_queue_detaches_with_a_reconnectable_close() {
        let session = Session::new(
            SessionId::generate(0),
            Id::new(5),
            Intents::all(),
            None,
            50,
            64,
        );
        let (small, _rx, mut control) = link(1, 2);
        session
            .go_live(
                EncodedEvent::new(EventKind::Ready, b"{}"),
                Vec::new(),
                small,
            )
            .unwrap();
        for _ in 0..3 {
            session.push_event(event());
        }
        match control.try_recv() {
            Ok(Control::Close(error)) => assert_eq!(error.close_code(), Some(4000)),
            other => panic!("expected a close, got {other:?}"),
        }
        let now = Instant::now();
        assert!(session
            .close_if_expired(now, Duration::from_secs(60))
            .is_none());
        // Everything is still there for the resume.
        let (again, _a, _b) = link(2, 8);
        let frames = session
            .resume(1, EncodedEvent::new(EventKind::Resumed, b"{}"), again)
            .unwrap();
        assert_eq!(
            frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![2, 3, 4, 5]
        );
        session.detach(2, now);
        assert!(session
            .close_if_expired(now + Duration::from_secs(61), Duration::from_secs(60))
            .is_some());
        assert_eq!(
            session.push_event(event()),
            Offer::Skipped,
            "closed sessions take nothing"
        );
    }
}
