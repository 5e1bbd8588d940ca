//! Shared fixtures: the server, seeding through the `Store` trait, and a gateway client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use concord_bus_local::{LocalBus, LocalTopology};
use concord_core::bus::{BusMessage, ChannelAccess, Dispatch, EventBus, ShardId};
use concord_core::gateway::{EventKind, Intents};
use concord_core::id::{ChannelId, GuildId, UserId};
use concord_core::model::channel::{Channel, ChannelType, PermissionOverwrite};
use concord_core::permissions::Permissions;
use concord_core::repo::{NewApplication, NewGuild, NewUser, Store};
use concord_core::snowflake::SnowflakeGenerator;
use concord_core::timestamp::Timestamp;
use concord_core::token::TokenKey;
use concord_core::topology::{self, Topology};
use concord_gateway_shard::{
    serve_links, ConnectionContext, LinkTickets, NodeConfig, ShardConfig, ShardNode,
};
use concord_router::{serve_upgrade, GatewayRouter, RouterParts};
use flate2::{Decompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected frame may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// Slots of the test gateway; two, so that routing by user is observable.
pub const SLOTS: u16 = 2;
/// Resume URL the tests configure.
pub const RESUME_URL: &str = "ws://127.0.0.1:9";

/// A running gateway with its store and bus.
pub struct Gateway {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub bus: Arc<LocalBus>,
    pub topology: Arc<LocalTopology>,
    pub tokens: TokenKey,
    pub router: Arc<GatewayRouter>,
    pub ids: SnowflakeGenerator,
    /// Link tickets, when the router reaches the shards over a link.
    pub tickets: Option<Arc<LinkTickets>>,
}

/// Settings tests start from: fast heartbeats are not needed, so keep the default interval.
pub fn config() -> ShardConfig {
    ShardConfig {
        resume_gateway_url: RESUME_URL.to_owned(),
        ..ShardConfig::default()
    }
}

impl Gateway {
    /// A gateway with two shards on a fresh SQLite database.
    pub async fn start(config: ShardConfig) -> Self {
        Self::start_on(&concord_store_sql::test_util::scratch_sqlite_url(), config).await
    }

    /// A gateway with two shards on the database at `url`.
    pub async fn start_on(url: &str, config: ShardConfig) -> Self {
        Self::start_with(url, config, |topology| topology).await
    }

    /// A gateway whose shards see the topology through `wrap` (tests read the topology itself).
    pub async fn start_with(
        url: &str,
        config: ShardConfig,
        wrap: impl FnOnce(Arc<LocalTopology>) -> Arc<dyn Topology>,
    ) -> Self {
        let store = concord_store_sql::connect(url).await.expect("open store");
        let bus = LocalBus::new(SLOTS);
        let topology = Arc::new(LocalTopology::new(SLOTS));
        let tokens = TokenKey::new(&[42u8; 32]);
        let shard_bus: Arc<dyn EventBus> = bus.clone();
        let config = Arc::new(config);
        // Linked: the shards sit behind a link listener, as in a shard process, and the router
        // holds no slot itself, as a router process.
        let link_listener = if crate::LINKED {
            Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind link"),
            )
        } else {
            None
        };
        let node_config = match &link_listener {
            Some(listener) => NodeConfig {
                node: 1,
                advertise: listener.local_addr().expect("link addr").to_string(),
                ..NodeConfig::local()
            },
            None => NodeConfig::local(),
        };
        let node = ShardNode::start(
            node_config,
            config.clone(),
            store.clone(),
            shard_bus,
            wrap(topology.clone()),
            tokens.clone(),
        )
        .await
        .expect("node starts");
        assert_eq!(node.owned_slots(), vec![0, 1]);
        tokio::spawn(node.clone().run(std::future::pending()));
        let tickets = link_listener
            .as_ref()
            .map(|_| Arc::new(LinkTickets::new(&[42u8; 32])));
        let router = match (link_listener, &tickets) {
            (Some(listener), Some(tickets)) => {
                let (never, shutdown) = tokio::sync::watch::channel(false);
                // Shard processes never tell clients to reconnect themselves.
                std::mem::forget(never);
                tokio::spawn(serve_links(
                    listener,
                    1,
                    tickets.clone(),
                    ConnectionContext {
                        router: node.clone(),
                        config: config.clone(),
                        tokens: tokens.clone(),
                        shutdown,
                    },
                    std::future::pending(),
                ));
                let router = Arc::new(GatewayRouter::new(RouterParts {
                    config,
                    tokens: tokens.clone(),
                    topology: topology.clone(),
                    local: None,
                    tickets: Some(tickets.clone()),
                }));
                router.refresh().await.expect("slot table");
                tokio::spawn(router.clone().run(std::future::pending()));
                router
            }
            _ => Arc::new(GatewayRouter::new(RouterParts {
                config,
                tokens: tokens.clone(),
                topology: topology.clone(),
                local: Some(node),
                tickets: None,
            })),
        };
        let app = {
            let router = router.clone();
            axum::Router::new()
                .fallback(move |req: axum::extract::Request| serve_upgrade(router.clone(), req))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            store,
            bus,
            topology,
            tokens,
            router,
            ids: SnowflakeGenerator::new(1, 1),
            tickets,
        }
    }

    /// Serves a second router over the same shards (as another router process would) and
    /// returns its gateway URL.
    pub async fn another_router(&self) -> String {
        let other = Arc::new(GatewayRouter::new(RouterParts {
            config: Arc::new(config()),
            tokens: self.tokens.clone(),
            topology: self.topology.clone(),
            local: self.router.local().cloned(),
            tickets: self.tickets.clone(),
        }));
        other.refresh().await.expect("slot table");
        let app = axum::Router::new()
            .fallback(move |req: axum::extract::Request| serve_upgrade(other.clone(), req));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("ws://{addr}/?v=10")
    }

    /// A human user with a live token.
    pub async fn user(&self, name: &str) -> (UserId, String) {
        let id: UserId = self.ids.next();
        self.store
            .insert_user(&NewUser {
                bot: false,
                discriminator: "0".into(),
                email: None,
                id,
                password_hash: None,
                username: format!("{name}{}", id.get() % 100_000),
            })
            .await
            .expect("insert user");
        (id, self.token(id).await)
    }

    /// A bot whose application has `flags`, with a live token.
    pub async fn bot(&self, name: &str, flags: u64) -> (UserId, String) {
        let (owner, _) = self.user(&format!("{name}owner")).await;
        let id: UserId = self.ids.next();
        self.store
            .create_application(&NewApplication {
                bot: NewUser {
                    bot: true,
                    discriminator: "0001".into(),
                    email: None,
                    id,
                    password_hash: None,
                    username: format!("{name}{}", id.get() % 100_000),
                },
                flags,
                name: name.into(),
                owner_id: owner,
                verify_key: "ab".repeat(32),
            })
            .await
            .expect("create application");
        (id, self.token(id).await)
    }

    /// Mints and records a token for `user`.
    pub async fn token(&self, user: UserId) -> String {
        let token_id = self.ids.next::<concord_core::id::GenericMarker>().get();
        self.store
            .insert_token(token_id, user, Timestamp::now())
            .await
            .expect("insert token");
        self.tokens.mint(user, token_id)
    }

    /// A guild owned by `owner` with one text channel whose overwrites are `overwrites`.
    pub async fn guild(
        &self,
        owner: UserId,
        overwrites: Vec<PermissionOverwrite>,
    ) -> (GuildId, ChannelId) {
        let id: GuildId = self.ids.next();
        let channel: ChannelId = self.ids.next();
        self.store
            .create_guild(&NewGuild {
                channels: vec![Channel {
                    flags: 0,
                    guild_id: Some(id),
                    id: channel,
                    kind: ChannelType::GuildText,
                    last_message_id: None,
                    name: "general".into(),
                    nsfw: false,
                    parent_id: None,
                    permission_overwrites: overwrites,
                    position: 0,
                    rate_limit_per_user: 0,
                    topic: None,
                }],
                everyone_permissions: Permissions::DEFAULT_EVERYONE,
                id,
                name: "Test Guild".into(),
                owner_id: owner,
                system_channel_id: Some(channel),
                created_at: Timestamp::now(),
            })
            .await
            .expect("create guild");
        (id, channel)
    }

    /// Adds a text channel with `overwrites` to `guild`.
    pub async fn channel(&self, guild: GuildId, overwrites: Vec<PermissionOverwrite>) -> ChannelId {
        let id: ChannelId = self.ids.next();
        let channel = Channel {
            flags: 0,
            guild_id: Some(guild),
            id,
            kind: ChannelType::GuildText,
            last_message_id: None,
            name: "private".into(),
            nsfw: false,
            parent_id: None,
            permission_overwrites: overwrites,
            position: 1,
            rate_limit_per_user: 0,
            topic: None,
        };
        self.store
            .insert_channel(&channel)
            .await
            .expect("insert channel");
        id
    }

    /// Adds `user` to `guild`.
    pub async fn join(&self, guild: GuildId, user: UserId) {
        assert!(self
            .store
            .add_member(guild, user, Timestamp::now())
            .await
            .expect("add member"));
    }

    /// Publishes a guild event to every interested shard, as the API does.
    pub async fn publish(&self, dispatch: Dispatch) {
        let guild = dispatch.guild_id.expect("guild event");
        let message = BusMessage::Dispatch(Arc::new(dispatch));
        let slots = self.interested(guild).await;
        self.bus.publish(&slots, message).await.expect("publish");
    }

    /// Slots with sessions in `guild`.
    pub async fn interested(&self, guild: GuildId) -> Vec<ShardId> {
        self.topology
            .interested_slots(guild)
            .await
            .expect("in-memory")
    }

    /// Slot of `user`'s sessions.
    pub fn user_shard(&self, user: UserId) -> ShardId {
        topology::user_slot(user, SLOTS)
    }

    /// Sends a control message to the shard owning `user`.
    /// A join announcement holds interest for the shard until handled, as the API does.
    pub async fn to_user_shard(&self, user: UserId, message: BusMessage) {
        let shard = self.user_shard(user);
        if let BusMessage::GuildJoined { guild_id, .. } = &message {
            self.topology
                .change_interest(shard, &[(*guild_id, 1)])
                .await
                .expect("in-memory");
        }
        self.bus.publish(&[shard], message).await.expect("publish");
    }

    /// Connects with the given query string (without `?`).
    pub async fn connect(&self, query: &str) -> Client {
        Client::connect(&format!("ws://{}/?{query}", self.addr)).await
    }

    /// Connects with `v=10&encoding=json`, reads HELLO and identifies.
    pub async fn identified(&self, token: &str, intents: Intents) -> (Client, Value) {
        let mut client = self.connect("v=10&encoding=json").await;
        client.hello().await;
        let ready = client.identify(token, intents).await;
        (client, ready)
    }
}

/// A topology whose interest decrements wait while the gate is write-locked, so a test can
/// hold a shard in the middle of dropping a session.
pub struct GatedTopology {
    pub inner: Arc<LocalTopology>,
    pub gate: Arc<tokio::sync::RwLock<()>>,
}

#[async_trait::async_trait]
impl Topology for GatedTopology {
    fn slot_count(&self) -> u16 {
        self.inner.slot_count()
    }

    async fn register(
        &self,
        member: &topology::Member,
        ttl: Duration,
    ) -> topology::TopologyResult<bool> {
        self.inner.register(member, ttl).await
    }

    async fn renew(
        &self,
        member: &topology::Member,
        ttl: Duration,
    ) -> topology::TopologyResult<bool> {
        self.inner.renew(member, ttl).await
    }

    async fn deregister(&self, member: &topology::Member) -> topology::TopologyResult<()> {
        self.inner.deregister(member).await
    }

    async fn acquire_slot(
        &self,
        slot: ShardId,
        node: topology::NodeId,
        ttl: Duration,
    ) -> topology::TopologyResult<Option<topology::SlotLease>> {
        self.inner.acquire_slot(slot, node, ttl).await
    }

    async fn renew_slot(
        &self,
        slot: ShardId,
        lease: topology::SlotLease,
        ttl: Duration,
    ) -> topology::TopologyResult<bool> {
        self.inner.renew_slot(slot, lease, ttl).await
    }

    async fn release_slot(
        &self,
        slot: ShardId,
        lease: topology::SlotLease,
    ) -> topology::TopologyResult<()> {
        self.inner.release_slot(slot, lease).await
    }

    async fn table(&self) -> topology::TopologyResult<topology::SlotTable> {
        self.inner.table().await
    }

    async fn interested_slots(&self, guild: GuildId) -> topology::TopologyResult<Vec<ShardId>> {
        self.inner.interested_slots(guild).await
    }

    async fn change_interest(
        &self,
        slot: ShardId,
        changes: &[(GuildId, i64)],
    ) -> topology::TopologyResult<()> {
        let _open = if changes.iter().any(|(_, d)| *d < 0) {
            Some(self.gate.read().await)
        } else {
            None
        };
        self.inner.change_interest(slot, changes).await
    }

    async fn reset_slot_interest(&self, slot: ShardId) -> topology::TopologyResult<()> {
        self.inner.reset_slot_interest(slot).await
    }
}

/// A MESSAGE_CREATE-shaped dispatch in `channel` with content stripping and optional access.
pub fn message(
    guild: GuildId,
    channel: ChannelId,
    content: &str,
    access: Option<ChannelAccess>,
) -> Dispatch {
    Dispatch {
        access,
        content_exempt: Vec::new(),
        data: Bytes::from(
            json!({"channel_id": channel, "guild_id": guild, "content": content}).to_string(),
        ),
        data_without_content: Some(Bytes::from(
            json!({"channel_id": channel, "guild_id": guild, "content": ""}).to_string(),
        )),
        guild_id: Some(guild),
        kind: EventKind::MessageCreate,
        user_id: None,
    }
}

/// A GUILD_UPDATE-shaped dispatch every GUILDS session gets: a marker that proves nothing
/// else arrived before it.
pub fn marker(guild: GuildId, label: &str) -> Dispatch {
    Dispatch {
        access: None,
        content_exempt: Vec::new(),
        data: Bytes::from(json!({"id": guild, "name": label}).to_string()),
        data_without_content: None,
        guild_id: Some(guild),
        kind: EventKind::GuildUpdate,
        user_id: None,
    }
}

/// Decoder matching the connection's `compress`.
enum Inflate {
    Zlib(Decompress),
    Zstd(zstd::stream::raw::Decoder<'static>),
}

/// What a read produced.
#[derive(Debug)]
pub enum Received {
    Payload(Value),
    Closed(Option<u16>),
}

/// A gateway client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    inflate: Option<Inflate>,
    /// Messages that arrived as BINARY.
    pub binary_messages: usize,
    /// Messages that arrived as TEXT.
    pub text_messages: usize,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let inflate = if url.contains("compress=zlib-stream") {
            Some(Inflate::Zlib(Decompress::new(true)))
        } else if url.contains("compress=zstd-stream") {
            Some(Inflate::Zstd(
                zstd::stream::raw::Decoder::new().expect("zstd decoder"),
            ))
        } else {
            None
        };
        Self {
            ws,
            inflate,
            binary_messages: 0,
            text_messages: 0,
        }
    }

    /// The next payload or close, within [`WAIT`].
    pub async fn next(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for the server");
            let message = match message {
                None => return Received::Closed(None),
                Some(Err(_)) => return Received::Closed(None),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Text(text) => {
                    self.text_messages += 1;
                    return Received::Payload(
                        serde_json::from_str(text.as_str()).expect("text frame is JSON"),
                    );
                }
                Message::Binary(bytes) => {
                    self.binary_messages += 1;
                    let json = self.decompress(&bytes);
                    return Received::Payload(
                        serde_json::from_slice(&json).expect("binary frame is JSON"),
                    );
                }
                Message::Close(frame) => return Received::Closed(frame.map(|f| u16::from(f.code))),
                _ => {}
            }
        }
    }

    fn decompress(&mut self, bytes: &[u8]) -> Vec<u8> {
        match self
            .inflate
            .as_mut()
            .expect("BINARY frame on an uncompressed connection")
        {
            Inflate::Zlib(inflate) => {
                assert!(
                    bytes.ends_with(&[0, 0, 0xFF, 0xFF]),
                    "zlib-stream messages end with a sync flush"
                );
                let mut out = Vec::with_capacity(bytes.len() * 4 + 1024);
                let mut fed = 0;
                loop {
                    let before = inflate.total_in();
                    inflate
                        .decompress_vec(&bytes[fed..], &mut out, FlushDecompress::Sync)
                        .expect("inflate");
                    fed += (inflate.total_in() - before) as usize;
                    if fed == bytes.len() && out.len() < out.capacity() {
                        return out;
                    }
                    out.reserve(out.capacity().max(1024));
                }
            }
            Inflate::Zstd(decoder) => {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                let mut out = Vec::new();
                let mut buf = vec![0u8; 1 << 16];
                let mut source = InBuffer::around(bytes);
                loop {
                    let mut sink = OutBuffer::around(&mut buf[..]);
                    decoder.run(&mut source, &mut sink).expect("zstd decode");
                    let written = sink.pos();
                    out.extend_from_slice(&buf[..written]);
                    if source.pos() == bytes.len() && written < buf.len() {
                        return out;
                    }
                }
            }
        }
    }

    /// The next payload; panics on a close.
    pub async fn payload(&mut self) -> Value {
        match self.next().await {
            Received::Payload(value) => value,
            Received::Closed(code) => {
                panic!("connection closed with {code:?} while a payload was expected")
            }
        }
    }

    /// The next dispatch (op 0), skipping heartbeat ACKs.
    pub async fn dispatch(&mut self) -> Value {
        loop {
            let value = self.payload().await;
            if value["op"] != 11 {
                assert_eq!(value["op"], 0, "expected a dispatch, got {value}");
                return value;
            }
        }
    }

    /// Reads until the server closes; returns the close code, skipping payloads.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            if let Received::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Reads HELLO.
    pub async fn hello(&mut self) -> Value {
        let hello = self.payload().await;
        assert_eq!(hello["op"], 10, "first frame must be HELLO: {hello}");
        hello
    }

    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Sends `text` split into a TEXT fragment and a final continuation.
    pub async fn send_fragmented(&mut self, text: &str) {
        let (head, tail) = text.split_at(text.len() / 2);
        let first = Frame::message(head.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
        let last = Frame::message(tail.as_bytes().to_vec(), OpCode::Data(Data::Continue), true);
        self.ws
            .send(Message::Frame(first))
            .await
            .expect("send fragment");
        self.ws
            .send(Message::Frame(last))
            .await
            .expect("send fragment");
    }

    /// Sends Identify and returns READY.
    pub async fn identify(&mut self, token: &str, intents: Intents) -> Value {
        self.send(identify(token, intents)).await;
        let ready = self.dispatch().await;
        assert_eq!(ready["t"], "READY", "{ready}");
        ready
    }

    /// Closes with a close frame carrying `code`.
    pub async fn close(mut self, code: u16) {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let frame = CloseFrame {
            code: code.into(),
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        // Drain until the server's answer so the close is complete.
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// An Identify payload.
pub fn identify(token: &str, intents: Intents) -> Value {
    json!({
        "op": 2,
        "d": {
            "token": token,
            "intents": intents.bits(),
            "properties": {"os": "linux", "browser": "test", "device": "test"},
        }
    })
}

/// A Resume payload.
pub fn resume(token: &str, session_id: &str, seq: u64) -> Value {
    json!({"op": 6, "d": {"token": token, "session_id": session_id, "seq": seq}})
}
