//! Shared harness: a running server per test, REST and gateway helpers.

use std::time::Duration;

use clap::Parser;
use concord::{Config, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub server: Server,
    pub api: Api,
}

/// REST helpers against any Concord API base (`http://host:port`): the test server's, or an API
/// process of a running cluster.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl std::ops::Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestServer {
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, &[]).await
    }

    pub async fn start_with(db: Db, extra: &[&str]) -> Self {
        let url = match db {
            Db::Sqlite => concord_store_sql::test_util::scratch_sqlite_url(),
            Db::Postgres => concord_store_sql::test_util::scratch_postgres_url().await,
        };
        let data = std::env::temp_dir().join(format!("concord-e2e-{}", rand_suffix()));
        std::fs::create_dir_all(&data).unwrap();
        let mut args = vec![
            "concord".to_owned(),
            "--listen=127.0.0.1:0".to_owned(),
            "--admin-listen=127.0.0.1:0".to_owned(),
            format!("--data-dir={}", data.display()),
            format!("--database-url={url}"),
            "--shards=2".to_owned(),
        ];
        if !extra.iter().any(|a| a.starts_with("--rate-limit")) {
            args.extend([
                "--rate-limit-global=100000".to_owned(),
                "--rate-limit-route=100000".to_owned(),
            ]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let config = Config::try_parse_from(args).unwrap();
        let server = Server::start(config).await.expect("server starts");
        let base = format!("http://{}", server.addr());
        Self {
            server,
            api: Api::new(&base),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.server.addr())
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Calls and asserts the status, returning the body.
    #[track_caller]
    pub fn expect(resp: Response, status: u16) -> Value {
        Api::expect(resp, status)
    }
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/api/v10{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// Calls and asserts the status, returning the body.
    #[track_caller]
    pub fn expect(resp: Response, status: u16) -> Value {
        assert_eq!(resp.status, status, "unexpected status, body {}", resp.body);
        resp.body
    }

    /// A registered user's token (as `Authorization` value) and id.
    pub async fn user(&self, name: &str) -> (String, String) {
        let body = json!({"username": format!("{name}{}", rand_suffix()), "password": "correct horse battery"});
        let r = Self::expect(
            self.call("POST", "/auth/register", None, Some(body)).await,
            201,
        );
        (
            r["token"].as_str().unwrap().to_owned(),
            r["user_id"].as_str().unwrap().to_owned(),
        )
    }

    /// A bot owned by `owner`: its `Bot <token>` and id.
    pub async fn bot(&self, owner: &str, name: &str) -> (String, String) {
        let app = Self::expect(
            self.call(
                "POST",
                "/applications",
                Some(owner),
                Some(json!({"name": format!("{name}{}", rand_suffix())})),
            )
            .await,
            201,
        );
        let id = app["id"].as_str().unwrap().to_owned();
        let reset = Self::expect(
            self.call(
                "POST",
                &format!("/applications/{id}/bot/reset"),
                Some(owner),
                None,
            )
            .await,
            200,
        );
        (format!("Bot {}", reset["token"].as_str().unwrap()), id)
    }

    /// A guild owned by `owner`: guild id and its text channel id.
    pub async fn guild(&self, owner: &str) -> (String, String) {
        let g = Self::expect(
            self.call(
                "POST",
                "/guilds",
                Some(owner),
                Some(json!({"name": "e2e guild"})),
            )
            .await,
            201,
        );
        let gid = g["id"].as_str().unwrap().to_owned();
        let chans = Self::expect(
            self.call("GET", &format!("/guilds/{gid}/channels"), Some(owner), None)
                .await,
            200,
        );
        let text = chans
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == 0)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (gid, text)
    }

    /// Makes `who` join the guild of `channel` through an invite created by `owner`.
    pub async fn join(&self, owner: &str, channel: &str, who: &str) {
        let inv = Self::expect(
            self.call(
                "POST",
                &format!("/channels/{channel}/invites"),
                Some(owner),
                Some(json!({})),
            )
            .await,
            200,
        );
        let code = inv["code"].as_str().unwrap();
        Self::expect(
            self.call("POST", &format!("/invites/{code}"), Some(who), None)
                .await,
            200,
        );
    }
}

pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{}", nanos % 100_000, N.fetch_add(1, Ordering::Relaxed))
}

/// Transport compression a gateway client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Zstd,
}

/// A raw gateway client that decodes compressed frames with real decompressors.
pub struct Gateway {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    compression: Compression,
    zlib: flate2::Decompress,
    zstd_buf: Vec<u8>,
    zstd: zstd::stream::raw::Decoder<'static>,
    pub last_seq: Option<u64>,
}

impl Gateway {
    pub async fn connect(url: &str, compression: Compression) -> Self {
        let query = match compression {
            Compression::None => "",
            Compression::Zlib => "&compress=zlib-stream",
            Compression::Zstd => "&compress=zstd-stream",
        };
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/?v=10&encoding=json{query}"))
            .await
            .unwrap();
        Self {
            ws,
            compression,
            zlib: flate2::Decompress::new(true),
            zstd_buf: Vec::new(),
            zstd: zstd::stream::raw::Decoder::new().unwrap(),
            last_seq: None,
        }
    }

    pub async fn send(&mut self, payload: Value) {
        self.ws
            .send(WsMessage::Text(payload.to_string().into()))
            .await
            .unwrap();
    }

    /// Next payload, or the close code when the server closed.
    pub async fn recv(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("gateway payload within 10 s");
            let bytes: Vec<u8> = match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    assert_eq!(
                        self.compression,
                        Compression::None,
                        "compressed sessions get binary frames"
                    );
                    t.as_bytes().to_vec()
                }
                Some(Ok(WsMessage::Binary(b))) => self.decompress(&b),
                Some(Ok(WsMessage::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            };
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(s) = value["s"].as_u64() {
                self.last_seq = Some(s);
            }
            return Ok(value);
        }
    }

    fn decompress(&mut self, data: &[u8]) -> Vec<u8> {
        match self.compression {
            Compression::None => data.to_vec(),
            Compression::Zlib => {
                assert!(
                    data.ends_with(&[0, 0, 0xFF, 0xFF]),
                    "zlib-stream messages end with a sync flush"
                );
                let mut out = Vec::with_capacity(data.len() * 8 + 1024);
                let before = self.zlib.total_in();
                loop {
                    let consumed = (self.zlib.total_in() - before) as usize;
                    out.reserve(4096);
                    self.zlib
                        .decompress_vec(&data[consumed..], &mut out, flate2::FlushDecompress::Sync)
                        .unwrap();
                    if (self.zlib.total_in() - before) as usize == data.len()
                        && out.len() < out.capacity()
                    {
                        break;
                    }
                }
                out
            }
            Compression::Zstd => {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                self.zstd_buf.clear();
                let mut input = InBuffer::around(data);
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let mut output = OutBuffer::around(&mut chunk[..]);
                    self.zstd.run(&mut input, &mut output).unwrap();
                    let n = output.pos();
                    self.zstd_buf.extend_from_slice(&chunk[..n]);
                    if input.pos() == data.len() && n < chunk.len() {
                        break;
                    }
                }
                std::mem::take(&mut self.zstd_buf)
            }
        }
    }

    /// Next dispatch (op 0), skipping heartbeat ACKs.
    pub async fn dispatch(&mut self) -> Value {
        loop {
            let v = self.recv().await.expect("connection open");
            if v["op"] == 0 {
                return v;
            }
        }
    }

    /// Next dispatch of the given type, skipping others.
    pub async fn dispatch_of(&mut self, t: &str) -> Value {
        loop {
            let v = self.dispatch().await;
            if v["t"] == t {
                return v;
            }
        }
    }

    /// HELLO, then Identify; returns READY.
    pub async fn identify(&mut self, token: &str, intents: u64) -> Value {
        let hello = self.recv().await.unwrap();
        assert_eq!(hello["op"], 10);
        self.send(json!({"op": 2, "d": {"token": token, "intents": intents, "properties": {"os": "linux", "browser": "e2e", "device": "e2e"}}})).await;
        let ready = self.dispatch().await;
        assert_eq!(ready["t"], "READY", "{ready}");
        ready
    }

    /// Drops the TCP connection without a close frame.
    pub async fn drop_connection(self) {
        drop(self.ws);
    }
}
