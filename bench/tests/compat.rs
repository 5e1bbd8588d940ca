//! The bench against a Discord-shaped server other than Concord, written here: registration
//! requires an extra field and answers with the token only, READY carries a user account's
//! guilds whole (no GUILD_CREATE follows), requests and upgrades without a `User-Agent` are
//! refused, message nonces are de-duplicated forever, and the gateway listens on another
//! address than the REST API; bots get their guilds as unavailable in READY, then a
//! GUILD_CREATE each, a moment later. A body lacking a required property is refused as a
//! JSON-schema validator does (the error filed under the empty key), and an application is
//! made without a bot, which must be added with `POST /applications/{id}/bot`. Driven as a
//! user would: setup → connect → fanout twice on the same fixture, then `fixture import` from bare tokens (a bot's among them) → connect,
//! fanout and post.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use common::{bench, figure, report, succeeded, Scratch};

/// The test server's state: accounts, guilds, invites, messages by nonce, live sessions.
#[derive(Default)]
struct World {
    next_id: AtomicU64,
    /// Bare token → account.
    users: Mutex<HashMap<String, Account>>,
    /// guild id → its one text channel, owner and members.
    guilds: Mutex<HashMap<u64, GuildRow>>,
    invites: Mutex<HashMap<String, u64>>,
    /// Every message ever created, by nonce: a repeated nonce gets the old message back.
    nonces: Mutex<HashMap<String, Value>>,
    /// Messages created (not the ones answered from the nonce table).
    created: AtomicU64,
    /// session number → (user id, its dispatch queue).
    sessions: Mutex<HashMap<u64, (u64, Queue)>>,
    gateway_url: Mutex<String>,
    /// application id → (owner, its bot's token once added).
    applications: Mutex<HashMap<u64, (u64, Option<String>)>>,
}

/// How long a bot waits for each GUILD_CREATE after READY.
const GUILD_CREATE_DELAY: Duration = Duration::from_millis(400);

#[derive(Clone)]
struct Account {
    id: u64,
    username: String,
    bot: bool,
}

/// A session's dispatches to send: (event name, data).
type Queue = mpsc::UnboundedSender<(String, Value)>;

#[derive(Clone)]
struct GuildRow {
    name: String,
    channel: u64,
    owner: u64,
    members: HashSet<u64>,
}

type Shared = Arc<World>;

impl World {
    fn id(&self) -> u64 {
        // Snowflake-sized, so that nothing relies on small ids.
        1_300_000_000_000_000_000 + self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The caller: `Bot <token>` for a bot, the bare token for a user account.
    fn user(&self, headers: &HeaderMap) -> Option<(u64, String)> {
        let header = headers.get("authorization")?.to_str().ok()?;
        let (token, bot) = match header.strip_prefix("Bot ") {
            Some(token) => (token, true),
            None => (header, false),
        };
        let account = self.users.lock().unwrap().get(token).cloned()?;
        (account.bot == bot).then_some((account.id, account.username))
    }

    /// Makes a bot account with user id `id`; returns its token.
    fn add_bot(&self, id: u64) -> String {
        let token = format!("bot{id}.{:x}", rand::random::<u64>());
        self.users.lock().unwrap().insert(
            token.clone(),
            Account {
                id,
                username: format!("bot{id}"),
                bot: true,
            },
        );
        token
    }

    /// Makes a bot and puts it in every guild, as an administrator would by hand.
    fn add_bot_everywhere(&self) -> String {
        let id = self.id();
        let token = self.add_bot(id);
        for row in self.guilds.lock().unwrap().values_mut() {
            row.members.insert(id);
        }
        token
    }

    fn guild_of_channel(&self, channel: u64) -> Option<(u64, GuildRow)> {
        self.guilds
            .lock()
            .unwrap()
            .iter()
            .find(|(_, g)| g.channel == channel)
            .map(|(id, g)| (*id, g.clone()))
    }

    /// The guilds of `user` as whole objects (a user account's READY, a GUILD_CREATE).
    fn full_guilds(&self, user: u64) -> Vec<Value> {
        self.guilds
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, g)| g.members.contains(&user))
            .map(|(id, g)| {
                json!({
                    "id": id.to_string(),
                    "name": g.name,
                    "owner_id": g.owner.to_string(),
                    "channels": [{"id": g.channel.to_string(), "type": 0, "name": "general"}],
                    "member_count": g.members.len(),
                })
            })
            .collect()
    }
}

fn discord_error(status: StatusCode, code: u32, message: &str, errors: Value) -> Response {
    let mut body = json!({"code": code, "message": message});
    if !errors.is_null() {
        body["errors"] = errors;
    }
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    discord_error(
        StatusCode::UNAUTHORIZED,
        0,
        "401: Unauthorized",
        Value::Null,
    )
}

/// Refuses any request without a `User-Agent`, as Discord does.
async fn require_user_agent(request: Request, next: Next) -> Response {
    if request.headers().get("user-agent").is_none() {
        return (StatusCode::BAD_REQUEST, "a User-Agent is required").into_response();
    }
    next.run(request).await
}

async fn register(State(world): State<Shared>, Json(body): Json<Value>) -> Response {
    if body["consent"] != json!(true) {
        return discord_error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body",
            json!({"consent": {"_errors": [{"code": "CONSENT_REQUIRED", "message": "You need to agree to the terms"}]}}),
        );
    }
    if body.get("date_of_birth").is_none() {
        // As a JSON-schema validator answers: the whole body is at fault, under "".
        return discord_error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body",
            json!({"": {"_errors": [{"code": "required", "message": "must have required property 'date_of_birth'"}]}}),
        );
    }
    let Some(username) = body["username"].as_str() else {
        return discord_error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body",
            json!({"username": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}}),
        );
    };
    let id = world.id();
    let token = format!("tok{id}.{:x}", rand::random::<u64>());
    world.users.lock().unwrap().insert(
        token.clone(),
        Account {
            id,
            username: username.to_owned(),
            bot: false,
        },
    );
    // The token only, as Discord's own registration answers.
    (StatusCode::CREATED, Json(json!({"token": token}))).into_response()
}

async fn me(State(world): State<Shared>, headers: HeaderMap) -> Response {
    match world.user(&headers) {
        Some((id, username)) => {
            Json(json!({"id": id.to_string(), "username": username})).into_response()
        }
        None => unauthorized(),
    }
}

async fn my_guilds(State(world): State<Shared>, headers: HeaderMap) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    let list: Vec<Value> = world
        .guilds
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, g)| g.members.contains(&user))
        .map(|(id, g)| json!({"id": id.to_string(), "name": g.name, "owner": g.owner == user}))
        .collect();
    Json(list).into_response()
}

async fn create_guild(
    State(world): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    let (id, channel) = (world.id(), world.id());
    let name = body["name"].as_str().unwrap_or("guild").to_owned();
    world.guilds.lock().unwrap().insert(
        id,
        GuildRow {
            name: name.clone(),
            channel,
            owner: user,
            members: HashSet::from([user]),
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "name": name})),
    )
        .into_response()
}

async fn guild_channels(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(guild): Path<u64>,
) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    let Some(row) = world.guilds.lock().unwrap().get(&guild).cloned() else {
        return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild", Value::Null);
    };
    if !row.members.contains(&user) {
        return discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access", Value::Null);
    }
    // A voice channel first, so that the bench must pick the text one.
    Json(json!([
        {"id": world.id().to_string(), "type": 2, "guild_id": guild.to_string()},
        {"id": row.channel.to_string(), "type": 0, "guild_id": guild.to_string()},
    ]))
    .into_response()
}

async fn create_invite(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(channel): Path<u64>,
) -> Response {
    if world.user(&headers).is_none() {
        return unauthorized();
    }
    let Some((guild, _)) = world.guild_of_channel(channel) else {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel", Value::Null);
    };
    let code = format!("inv{}", world.id());
    world.invites.lock().unwrap().insert(code.clone(), guild);
    Json(json!({"code": code})).into_response()
}

async fn accept_invite(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    let Some(guild) = world.invites.lock().unwrap().get(&code).copied() else {
        return discord_error(StatusCode::NOT_FOUND, 10006, "Unknown Invite", Value::Null);
    };
    if let Some(row) = world.guilds.lock().unwrap().get_mut(&guild) {
        row.members.insert(user);
    }
    Json(json!({"code": code, "guild": {"id": guild.to_string()}})).into_response()
}

/// An application, without a bot (as Discord made them before 2023) and without a token.
async fn create_application(State(world): State<Shared>, headers: HeaderMap) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    let id = world.id();
    world.applications.lock().unwrap().insert(id, (user, None));
    Json(json!({"id": id.to_string(), "bot": null})).into_response()
}

/// Adds the application's bot; answers its token.
async fn add_application_bot(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(app): Path<u64>,
) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    match world.applications.lock().unwrap().get_mut(&app) {
        Some((owner, bot)) if *owner == user && bot.is_none() => {
            // The bot's user id is the application's, as on Discord.
            let token = world.add_bot(app);
            *bot = Some(token.clone());
            Json(json!({"token": token})).into_response()
        }
        _ => discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access", Value::Null),
    }
}

/// The bot's token, or 50010 when the application has no bot.
async fn reset_application_bot(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(app): Path<u64>,
) -> Response {
    let Some((user, _)) = world.user(&headers) else {
        return unauthorized();
    };
    match world.applications.lock().unwrap().get(&app) {
        Some((owner, Some(token))) if *owner == user => {
            Json(json!({"token": token})).into_response()
        }
        Some((owner, None)) if *owner == user => discord_error(
            StatusCode::BAD_REQUEST,
            50010,
            "OAuth2 application does not have a bot",
            Value::Null,
        ),
        _ => discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access", Value::Null),
    }
}

async fn gateway(State(world): State<Shared>) -> Json<Value> {
    Json(json!({"url": world.gateway_url.lock().unwrap().clone()}))
}

async fn create_message(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(channel): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    let Some((user, username)) = world.user(&headers) else {
        return unauthorized();
    };
    let Some((guild, row)) = world.guild_of_channel(channel) else {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel", Value::Null);
    };
    if !row.members.contains(&user) {
        return discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access", Value::Null);
    }
    let nonce = match &body["nonce"] {
        Value::String(nonce) if nonce.len() <= 25 => Some(nonce.clone()),
        Value::Null => None,
        _ => {
            return discord_error(
                StatusCode::BAD_REQUEST,
                50035,
                "Invalid Form Body",
                json!({"nonce": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be 25 or fewer in length."}]}}),
            )
        }
    };
    // The nonce table is held across the check and the insert, so that one nonce makes one
    // message even when two requests race.
    let mut nonces = world.nonces.lock().unwrap();
    if let Some(old) = nonce.as_ref().and_then(|n| nonces.get(n)) {
        // Discord's answer to a repeated nonce: the earlier message, and no event.
        return Json(old.clone()).into_response();
    }
    let message = json!({
        "id": world.id().to_string(),
        "channel_id": channel.to_string(),
        "guild_id": guild.to_string(),
        "content": body["content"],
        "nonce": body["nonce"],
        "author": {"id": user.to_string(), "username": username},
        "type": 0,
    });
    if let Some(nonce) = nonce {
        nonces.insert(nonce, message.clone());
    }
    drop(nonces);
    world.created.fetch_add(1, Ordering::Relaxed);
    for (member, queue) in world.sessions.lock().unwrap().values() {
        if row.members.contains(member) {
            let _ = queue.send(("MESSAGE_CREATE".to_owned(), message.clone()));
        }
    }
    Json(message).into_response()
}

/// The gateway: refuses an upgrade without a `User-Agent` (HTTP 400), then HELLO, Identify,
/// READY with the user's guilds whole, heartbeats, and the dispatches.
async fn upgrade(State(world): State<Shared>, mut request: Request) -> Response {
    if request.headers().get("user-agent").is_none() {
        return (StatusCode::BAD_REQUEST, "a User-Agent is required").into_response();
    }
    let Ok((response, upgrade)) = fastwebsockets::upgrade::upgrade(&mut request) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    tokio::spawn(async move {
        if let Ok(ws) = upgrade.await {
            serve_session(world, ws).await;
        }
    });
    response.into_response()
}

type Io = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;
type Writer = fastwebsockets::WebSocketWrite<tokio::io::WriteHalf<Io>>;

/// Writes and flushes one frame; false when the socket is gone.
async fn write_frame(write: &mut Writer, frame: Frame<'_>) -> bool {
    write.write_frame(frame).await.is_ok() && write.flush().await.is_ok()
}

fn text(value: &Value) -> Frame<'static> {
    Frame::text(Payload::Owned(value.to_string().into_bytes()))
}

async fn serve_session(world: Shared, ws: fastwebsockets::WebSocket<Io>) {
    let (read, mut write) = ws.split(tokio::io::split);
    // The reader runs apart, since a frame read may not be cancelled midway.
    let (frames_tx, mut frames) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut read = FragmentCollectorRead::new(read);
        let mut ignore = |_: Frame<'_>| std::future::ready(Ok::<(), std::io::Error>(()));
        while let Ok(frame) = read.read_frame(&mut ignore).await {
            match frame.opcode {
                OpCode::Text => match serde_json::from_slice(&frame.payload) {
                    Ok(value) => {
                        if frames_tx.send(value).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                OpCode::Close => return,
                _ => {}
            }
        }
    });
    let session = world.id();
    let (queue, mut events) = mpsc::unbounded_channel();
    let mut seq = 0u64;
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 1000}});
    if !write_frame(&mut write, text(&hello)).await {
        return;
    }
    let mut identified = false;
    loop {
        let out = tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                match frame["op"].as_u64() {
                    Some(1) => json!({"op": 11}),
                    Some(2) if !identified => {
                        let token = frame["d"]["token"].as_str().unwrap_or_default();
                        let Some(account) = world.users.lock().unwrap().get(token).cloned() else {
                            let close = Frame::close(4004, b"Authentication failed");
                            write_frame(&mut write, close).await;
                            break;
                        };
                        identified = true;
                        let user = account.id;
                        world.sessions.lock().unwrap().insert(session, (user, queue.clone()));
                        let guilds = world.full_guilds(user);
                        let listed: Vec<Value> = if account.bot {
                            // A bot's READY lists its guilds unavailable; each GUILD_CREATE
                            // follows later.
                            let later = (queue.clone(), guilds.clone());
                            tokio::spawn(async move {
                                tokio::time::sleep(GUILD_CREATE_DELAY).await;
                                for guild in later.1 {
                                    let _ = later.0.send(("GUILD_CREATE".to_owned(), guild));
                                }
                            });
                            guilds
                                .iter()
                                .map(|g| json!({"id": g["id"], "unavailable": true}))
                                .collect()
                        } else {
                            guilds
                        };
                        seq += 1;
                        json!({"op": 0, "s": seq, "t": "READY", "d": {
                            "v": 10,
                            "user": {
                                "id": user.to_string(),
                                "username": account.username,
                                "bot": account.bot,
                            },
                            "session_id": session.to_string(),
                            "resume_gateway_url": world.gateway_url.lock().unwrap().clone(),
                            "guilds": listed,
                        }})
                    }
                    _ => {
                        write_frame(&mut write, Frame::close(4002, b"Decode error")).await;
                        break;
                    }
                }
            }
            event = events.recv() => {
                let Some((name, data)) = event else { break };
                seq += 1;
                json!({"op": 0, "s": seq, "t": name, "d": data})
            }
        };
        if !write_frame(&mut write, text(&out)).await {
            break;
        }
    }
    world.sessions.lock().unwrap().remove(&session);
}

/// Starts the server: REST on 127.0.0.1, the gateway on 127.0.0.2 (another address, as a
/// cluster may have). Returns the state, the REST base and the gateway URL.
async fn start_server() -> (Shared, String, String) {
    let world = Shared::default();
    let api = Router::new()
        .route("/api/v10/auth/register", post(register))
        .route("/api/v10/users/@me", get(me))
        .route("/api/v10/users/@me/guilds", get(my_guilds))
        .route("/api/v10/guilds", post(create_guild))
        .route("/api/v10/guilds/{id}/channels", get(guild_channels))
        .route("/api/v10/channels/{id}/invites", post(create_invite))
        .route("/api/v10/channels/{id}/messages", post(create_message))
        .route("/api/v10/invites/{code}", post(accept_invite))
        .route("/api/v10/gateway", get(gateway))
        .route("/api/v10/applications", post(create_application))
        .route("/api/v10/applications/{id}/bot", post(add_application_bot))
        .route(
            "/api/v10/applications/{id}/bot/reset",
            post(reset_application_bot),
        )
        .layer(middleware::from_fn(require_user_agent))
        .with_state(world.clone());
    let gateway = Router::new()
        .route("/", any(upgrade))
        .with_state(world.clone());
    let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let (rest_addr, ws_addr): (SocketAddr, SocketAddr) =
        (rest.local_addr().unwrap(), ws.local_addr().unwrap());
    let gateway_url = format!("ws://{ws_addr}");
    *world.gateway_url.lock().unwrap() = gateway_url.clone();
    tokio::spawn(async move { axum::serve(rest, api).await });
    tokio::spawn(async move { axum::serve(ws, gateway).await });
    (world, format!("http://{rest_addr}"), gateway_url)
}

#[track_caller]
fn failed_with(what: &str, output: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{what}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{what}: `{needle}` in {stderr}");
    }
}

/// A fanout run: every message delivered to every session of its guild, none missing.
/// `bots`: the fixture's bot is in every guild and opens a session too.
async fn fanout(fixture: &str, gateway: &str, json: &str, bots: bool) -> Value {
    let mut args = vec![
        "fanout",
        "--fixture",
        fixture,
        "--gateway",
        gateway,
        "--rate",
        "20",
        "--duration",
        "2s",
        "--ready-timeout",
        "5s",
        "--json",
        json,
        "--slo",
        "missing=0,duplicates=0,gaps=0",
    ];
    if bots {
        args.push("--with-bots");
    }
    let out = bench(&args).await;
    succeeded("fanout", &out);
    let fanout = report(json);
    let posted = figure(&fanout, "messages_posted");
    assert!(posted >= 20.0, "{posted} messages posted");
    assert_eq!(figure(&fanout, "posts_failed"), 0.0);
    let (sessions, per_message) = if bots { (13.0, 7.0) } else { (12.0, 6.0) };
    assert_eq!(figure(&fanout, "ready"), sessions);
    // 12 users, 3 guilds of 6 (and the bot in each): each message reaches every session of
    // its guild.
    assert_eq!(figure(&fanout, "expected"), posted * per_message);
    assert_eq!(figure(&fanout, "deliveries"), figure(&fanout, "expected"));
    assert_eq!(figure(&fanout, "missing"), 0.0);
    fanout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_against_a_discord_shaped_server() {
    let scratch = Scratch::new("compat");
    let (world, target, gateway) = start_server().await;
    let fixture = scratch.path("fixture.json");
    let setup = |extra: Option<&'static str>| {
        let (target, fixture) = (target.clone(), fixture.clone());
        async move {
            let mut args = vec![
                "setup",
                "--target",
                &target,
                "--users",
                "12",
                "--guilds",
                "3",
                "--members-per-guild",
                "6",
                "--bots",
                "1",
                "--fixture",
                &fixture,
            ];
            if let Some(extra) = extra {
                args.extend(["--register-extra", extra]);
            }
            bench(&args).await
        }
    };

    // Without the extra field, the refusal names it.
    let out = setup(None).await;
    failed_with(
        "setup without consent",
        &out,
        2,
        &["auth/register", "50035", "consent: CONSENT_REQUIRED"],
    );
    // A whole-body error names the property through its message.
    let out = setup(Some(r#"{"consent": true}"#)).await;
    failed_with(
        "setup without date_of_birth",
        &out,
        2,
        &["(must have required property 'date_of_birth')"],
    );
    let out = setup(Some(r#"{"consent": true, "date_of_birth": "2000-01-01"}"#)).await;
    succeeded("setup", &out);
    let written: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    let users = written["users"].as_array().unwrap();
    assert_eq!(users.len(), 12);
    // Ids come from GET /users/@me, since registration answered with the token only.
    for user in users {
        let token = user["token"].as_str().unwrap();
        let id = world.users.lock().unwrap()[token].id;
        assert_eq!(user["id"], id.to_string());
    }
    // The application had no bot: setup added it, and holds its token.
    let bots = written["bots"].as_array().unwrap();
    assert_eq!(bots.len(), 1);
    let bot_token = bots[0]["token"].as_str().unwrap();
    let bot_account = world.users.lock().unwrap()[bot_token].clone();
    assert!(bot_account.bot);
    assert_eq!(bots[0]["id"], bot_account.id.to_string());

    // GET /gateway names another address than the target: refused unless given.
    let out = bench(&["connect", "--fixture", &fixture, "--duration", "0s"]).await;
    failed_with(
        "connect to an address not given",
        &out,
        2,
        &["neither the target nor a --gateway URL"],
    );

    // Upgrades without a User-Agent are refused: no session ready, the run fails, saying why.
    let out = bench(&[
        "connect",
        "--fixture",
        &fixture,
        "--gateway",
        &gateway,
        "--user-agent",
        "",
        "--duration",
        "0s",
    ])
    .await;
    failed_with(
        "connect without a User-Agent",
        &out,
        2,
        &["no session became ready", "http_400 × 12"],
    );

    // READY carries the guilds whole: every session is ready without any GUILD_CREATE.
    let json = scratch.path("connect.json");
    let out = bench(&[
        "connect",
        "--fixture",
        &fixture,
        "--gateway",
        &gateway,
        "--duration",
        "1500ms",
        "--ready-timeout",
        "5s",
        "--json",
        &json,
    ])
    .await;
    succeeded("connect", &out);
    let connect = report(&json);
    assert_eq!(figure(&connect, "ready"), 12.0);
    assert_eq!(figure(&connect, "sessions_held"), 12.0);
    assert_eq!(figure(&connect, "failures"), 0.0);
    assert!(figure(&connect, "heartbeat_acks") > 0.0);
    assert_eq!(connect["histograms"]["guilds"]["count"], 12);

    // Twice on the same fixture: the second run's nonces must not repeat the first's, or the
    // server would answer with old messages and send no event.
    let first = fanout(&fixture, &gateway, &scratch.path("fanout-1.json"), false).await;
    let second = fanout(&fixture, &gateway, &scratch.path("fanout-2.json"), false).await;
    assert_eq!(
        world.created.load(Ordering::Relaxed) as f64,
        figure(&first, "messages_posted") + figure(&second, "messages_posted"),
        "every POST made a new message"
    );

    // A fixture from bare tokens, as for a server without a registration route; a bot made
    // by hand joins every guild.
    let bot = world.add_bot_everywhere();
    let handmade = scratch.path("tokens.json");
    let tokens: Vec<Value> = users.iter().map(|u| json!({"token": u["token"]})).collect();
    std::fs::write(
        &handmade,
        json!({"target": target, "users": tokens, "bots": [{"token": bot}]}).to_string(),
    )
    .unwrap();
    let imported = scratch.path("imported.json");
    let out = bench(&["fixture", "import", &handmade, "--fixture", &imported]).await;
    succeeded("fixture import", &out);
    let made: Value = serde_json::from_slice(&std::fs::read(&imported).unwrap()).unwrap();
    let mut guilds: Vec<(String, String, usize, Vec<usize>)> = made["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut members: Vec<usize> = serde_json::from_value(g["members"].clone()).unwrap();
            let owner = g["owner"].as_u64().unwrap() as usize;
            assert_eq!(members[0], owner, "owner first");
            members.sort_unstable();
            (
                g["id"].as_str().unwrap().to_owned(),
                g["channel_id"].as_str().unwrap().to_owned(),
                owner,
                members,
            )
        })
        .collect();
    let mut expected: Vec<(String, String, usize, Vec<usize>)> = written["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut members: Vec<usize> = serde_json::from_value(g["members"].clone()).unwrap();
            members.sort_unstable();
            (
                g["id"].as_str().unwrap().to_owned(),
                g["channel_id"].as_str().unwrap().to_owned(),
                g["owner"].as_u64().unwrap() as usize,
                members,
            )
        })
        .collect();
    guilds.sort();
    expected.sort();
    assert_eq!(guilds, expected, "import finds what setup made");
    assert_eq!(made["users"], written["users"]);
    let bot_id = world.users.lock().unwrap()[&bot].id;
    assert_eq!(
        made["bots"],
        json!([{"id": bot_id.to_string(), "token": bot}])
    );

    // The bot's sessions wait for their GUILD_CREATEs; the users' do not.
    let json = scratch.path("connect-bots.json");
    let out = bench(&[
        "connect",
        "--fixture",
        &imported,
        "--gateway",
        &gateway,
        "--with-bots",
        "--duration",
        "0s",
        "--ready-timeout",
        "5s",
        "--json",
        &json,
    ])
    .await;
    succeeded("connect with bots", &out);
    let connect = report(&json);
    assert_eq!(figure(&connect, "ready"), 13.0);
    let guilds = &connect["histograms"]["guilds"];
    assert_eq!(guilds["count"], 13);
    let waited = GUILD_CREATE_DELAY.as_micros() as u64;
    assert!(guilds["max_us"].as_u64().unwrap() >= waited, "{guilds}");
    assert!(guilds["p50_us"].as_u64().unwrap() < waited, "{guilds}");
    fanout(&imported, &gateway, &scratch.path("fanout-3.json"), true).await;

    let json = scratch.path("post.json");
    let out = bench(&[
        "post",
        "--fixture",
        &imported,
        "--concurrency",
        "4",
        "--duration",
        "1s",
        "--json",
        &json,
    ])
    .await;
    succeeded("post", &out);
    let post = report(&json);
    assert!(figure(&post, "posts_ok") > 10.0);
    assert_eq!(figure(&post, "errors"), 0.0);
}
