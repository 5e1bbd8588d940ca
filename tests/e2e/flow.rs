//! REST → API → bus → shard → socket, through the composed server, on SQLite and PostgreSQL.

use serde_json::json;

use crate::common::{Compression, Db, Gateway, TestServer};

const GUILDS: u64 = 1;
const GUILD_MESSAGES: u64 = 1 << 9;
const MESSAGE_CONTENT: u64 = 1 << 15;
const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;

async fn identify_to_delivery(db: Db, compression: Compression) {
    let s = TestServer::start(db).await;
    let (owner, _) = s.user("owner").await;
    let (bot, bot_id) = s.bot(&owner, "flowbot").await;
    let (guild, general) = s.guild(&owner).await;
    s.join(&owner, &general, &bot).await;

    let mut gw = Gateway::connect(&s.ws_url(), compression).await;
    let ready = gw
        .identify(
            &bot,
            GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT | GUILD_MESSAGE_REACTIONS,
        )
        .await;
    assert_eq!(ready["s"], 1);
    assert_eq!(ready["d"]["user"]["id"], bot_id.as_str());
    assert_eq!(ready["d"]["resume_gateway_url"], s.ws_url());
    assert_eq!(
        ready["d"]["guilds"],
        json!([{"id": guild, "unavailable": true}])
    );
    let created = gw.dispatch().await;
    assert_eq!(created["t"], "GUILD_CREATE");
    assert_eq!(created["d"]["id"], guild.as_str());
    assert!(created["d"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == general.as_str()));

    let sent = TestServer::expect(
        s.call(
            "POST",
            &format!("/channels/{general}/messages"),
            Some(&owner),
            Some(json!({"content": "hello"})),
        )
        .await,
        200,
    );
    let event = gw.dispatch_of("MESSAGE_CREATE").await;
    assert_eq!(event["d"]["id"], sent["id"]);
    assert_eq!(event["d"]["content"], "hello");
    assert_eq!(event["d"]["guild_id"], guild.as_str());
    assert!(
        event["d"]["member"].is_object(),
        "guild messages carry the author's member"
    );
    assert_eq!(event["s"], created["s"].as_u64().unwrap() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_sqlite_plain() {
    identify_to_delivery(Db::Sqlite, Compression::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_sqlite_zlib_stream() {
    identify_to_delivery(Db::Sqlite, Compression::Zlib).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_postgres_zstd_stream() {
    identify_to_delivery(Db::Postgres, Compression::Zstd).await;
}

/// A member who cannot view a channel receives none of its events; one who can, does.
async fn hidden_channel_stays_hidden(db: Db) {
    let s = TestServer::start(db).await;
    let (owner, _) = s.user("owner").await;
    let (member, _) = s.user("member").await;
    let (guild, general) = s.guild(&owner).await;
    s.join(&owner, &general, &member).await;
    let secret = TestServer::expect(
        s.call(
            "POST",
            &format!("/guilds/{guild}/channels"),
            Some(&owner),
            Some(json!({"name": "secret", "permission_overwrites": [{"id": guild, "type": 0, "allow": "0", "deny": "1024"}]})),
        )
        .await,
        201,
    );
    let secret = secret["id"].as_str().unwrap().to_owned();

    let intents = GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT | (1 << 11);
    let mut watcher = Gateway::connect(&s.ws_url(), Compression::None).await;
    watcher.identify(&member, intents).await;
    watcher.dispatch_of("GUILD_CREATE").await;
    let mut owner_gw = Gateway::connect(&s.ws_url(), Compression::None).await;
    owner_gw.identify(&owner, intents).await;
    owner_gw.dispatch_of("GUILD_CREATE").await;

    // The member cannot read it over REST either.
    let denied = s
        .call(
            "GET",
            &format!("/channels/{secret}/messages"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["code"], 50001);

    for path in [
        format!("/channels/{secret}/messages"),
        format!("/channels/{secret}/typing"),
    ] {
        let body = path
            .ends_with("messages")
            .then(|| json!({"content": "classified"}));
        let r = s.call("POST", &path, Some(&owner), body).await;
        assert!(r.status == 200 || r.status == 204, "{}", r.body);
    }
    let visible = TestServer::expect(
        s.call(
            "POST",
            &format!("/channels/{general}/messages"),
            Some(&owner),
            Some(json!({"content": "public"})),
        )
        .await,
        200,
    );
    // The owner sees the secret message; the member's next message event is the public one.
    let owner_event = owner_gw.dispatch_of("MESSAGE_CREATE").await;
    assert_eq!(owner_event["d"]["channel_id"], secret.as_str());
    loop {
        let e = watcher.dispatch().await;
        assert_ne!(e["d"]["channel_id"], secret.as_str(), "leaked {e}");
        if e["t"] == "MESSAGE_CREATE" {
            assert_eq!(e["d"]["id"], visible["id"]);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_channel_sqlite() {
    hidden_channel_stays_hidden(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_channel_postgres() {
    hidden_channel_stays_hidden(Db::Postgres).await;
}

/// A dropped session resumes through the router and gets every missed dispatch in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_missed_events_without_gaps() {
    let s = TestServer::start(Db::Sqlite).await;
    let (owner, _) = s.user("owner").await;
    let (bot, _) = s.bot(&owner, "resumebot").await;
    let (_, general) = s.guild(&owner).await;
    s.join(&owner, &general, &bot).await;

    let mut gw = Gateway::connect(&s.ws_url(), Compression::Zlib).await;
    let ready = gw
        .identify(&bot, GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT)
        .await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    let resume_url = ready["d"]["resume_gateway_url"]
        .as_str()
        .unwrap()
        .to_owned();
    gw.dispatch_of("GUILD_CREATE").await;
    let seen = gw.last_seq.unwrap();
    // The heartbeat tells the server what the client has: older frames may leave the replay buffer.
    gw.send(json!({"op": 1, "d": seen})).await;
    assert_eq!(gw.recv().await.unwrap()["op"], 11);
    gw.drop_connection().await;

    let mut ids = Vec::new();
    for i in 0..5 {
        let m = TestServer::expect(
            s.call(
                "POST",
                &format!("/channels/{general}/messages"),
                Some(&owner),
                Some(json!({"content": format!("missed {i}")})),
            )
            .await,
            200,
        );
        ids.push(m["id"].clone());
    }

    // A resume from before the acknowledged sequence cannot be served.
    let mut stale = Gateway::connect(&resume_url, Compression::None).await;
    assert_eq!(stale.recv().await.unwrap()["op"], 10);
    stale
        .send(json!({"op": 6, "d": {"token": bot, "session_id": session_id, "seq": seen - 1}}))
        .await;
    let refused = stale.recv().await.unwrap();
    assert_eq!(
        (refused["op"].as_u64(), refused["d"].as_bool()),
        (Some(9), Some(false))
    );

    let mut gw = Gateway::connect(&resume_url, Compression::Zlib).await;
    assert_eq!(gw.recv().await.unwrap()["op"], 10);
    gw.send(json!({"op": 6, "d": {"token": bot, "session_id": session_id, "seq": seen}}))
        .await;
    for (i, id) in ids.iter().enumerate() {
        let e = gw.dispatch().await;
        assert_eq!(e["t"], "MESSAGE_CREATE");
        assert_eq!(e["s"], seen + 1 + i as u64, "no gap, no duplicate");
        assert_eq!(&e["d"]["id"], id);
    }
    let resumed = gw.dispatch().await;
    assert_eq!(resumed["t"], "RESUMED");
    assert_eq!(resumed["s"], seen + 6);

    // An unknown session is told to identify again.
    let mut other = Gateway::connect(&resume_url, Compression::None).await;
    other.recv().await.unwrap();
    other
        .send(json!({"op": 6, "d": {"token": bot, "session_id": "0123456789abcdef", "seq": 1}}))
        .await;
    let invalid = other.recv().await.unwrap();
    assert_eq!(invalid["op"], 9);
    assert_eq!(invalid["d"], false);
}

/// Resetting a bot token closes its open sessions with 4004 and refuses the old token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reset_closes_sessions() {
    let s = TestServer::start(Db::Sqlite).await;
    let (owner, _) = s.user("owner").await;
    let (bot, bot_id) = s.bot(&owner, "resetbot").await;
    let mut gw = Gateway::connect(&s.ws_url(), Compression::None).await;
    gw.identify(&bot, GUILDS).await;
    TestServer::expect(
        s.call(
            "POST",
            &format!("/applications/{bot_id}/bot/reset"),
            Some(&owner),
            None,
        )
        .await,
        200,
    );
    loop {
        match gw.recv().await {
            Ok(_) => continue,
            Err(code) => {
                assert_eq!(code, Some(4004));
                break;
            }
        }
    }
    assert_eq!(
        s.call("GET", "/users/@me", Some(&bot), None).await.status,
        401
    );
    let mut again = Gateway::connect(&s.ws_url(), Compression::None).await;
    again.recv().await.unwrap();
    again
        .send(json!({"op": 2, "d": {"token": bot, "intents": GUILDS, "properties": {}}}))
        .await;
    assert_eq!(again.recv().await.err(), Some(Some(4004)));
}

/// Admin endpoints answer on their own listener, with request, session and dispatch metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints() {
    let s = TestServer::start(Db::Sqlite).await;
    let (owner, _) = s.user("metrics").await;
    TestServer::expect(s.call("GET", "/users/@me", Some(&owner), None).await, 200);
    let (_, general) = s.guild(&owner).await;
    let mut gw = Gateway::connect(&s.ws_url(), Compression::None).await;
    gw.identify(&owner, GUILDS | GUILD_MESSAGES).await;
    gw.dispatch_of("GUILD_CREATE").await;
    TestServer::expect(
        s.call(
            "POST",
            &format!("/channels/{general}/messages"),
            Some(&owner),
            Some(json!({"content": "m"})),
        )
        .await,
        200,
    );
    gw.dispatch_of("MESSAGE_CREATE").await;
    let admin = format!("http://{}", s.server.admin_addr());
    let health = s.http.get(format!("{admin}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = s.http.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = s
        .http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "concord_api_requests_total",
        "concord_api_request_duration_seconds",
        "concord_gateway_sessions",
        "concord_gateway_dispatches_total",
        "concord_gateway_identify_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }
}

/// A user who joins while connected gets GUILD_CREATE and then the very next message, even when
/// it is posted before their shard has handled the join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_just_joined_gets_the_next_message() {
    let s = TestServer::start(Db::Sqlite).await;
    let (owner, _) = s.user("owner").await;
    let (joiner, _) = s.user("joiner").await;
    let (guild, general) = s.guild(&owner).await;
    let mut gw = Gateway::connect(&s.ws_url(), Compression::None).await;
    let ready = gw
        .identify(&joiner, GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT)
        .await;
    assert_eq!(ready["d"]["guilds"], json!([]));

    s.join(&owner, &general, &joiner).await;
    let sent = TestServer::expect(
        s.call(
            "POST",
            &format!("/channels/{general}/messages"),
            Some(&owner),
            Some(json!({"content": "welcome"})),
        )
        .await,
        200,
    );
    let created = gw.dispatch_of("GUILD_CREATE").await;
    assert_eq!(created["d"]["id"], guild.as_str());
    let message = gw.dispatch_of("MESSAGE_CREATE").await;
    assert_eq!(message["d"]["id"], sent["id"]);
}

/// Shutdown tells connected sessions to reconnect (op 7), closes them, and finishes promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_reconnect_and_drains() {
    let s = TestServer::start(Db::Sqlite).await;
    let (user, _) = s.user("drain").await;
    let mut gw = Gateway::connect(&s.ws_url(), Compression::None).await;
    gw.identify(&user, GUILDS).await;
    let addr = s.addr();
    let shutdown = tokio::spawn(s.server.shutdown());
    loop {
        match gw.recv().await {
            Ok(v) if v["op"] == 7 => break,
            Ok(_) => continue,
            Err(code) => panic!("closed with {code:?} before op 7"),
        }
    }
    let closed = gw.recv().await.expect_err("the server closes after op 7");
    assert_ne!(closed, Some(1000), "the session must stay resumable");
    tokio::time::timeout(std::time::Duration::from_secs(20), shutdown)
        .await
        .expect("drains in time")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}
