//! Test harness: the real router over a real store (SQLite or PostgreSQL) and a real in-process
//! bus whose shard channels the tests read to check published events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use concord_api::{router, ApiConfig, AppState, Argon2Params, RateLimitConfig};
use concord_bus_local::{LocalBus, LocalTopology};
use concord_core::bus::{BusMessage, Dispatch, EventBus, ShardId, Subscription};
use concord_core::id::{ChannelId, GuildId, UserId};
use concord_core::snowflake::SnowflakeGenerator;
use concord_core::token::TokenKey;
use concord_core::topology::{self, Topology};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tower::ServiceExt;

/// Shards of the test bus; two, so user- and guild-targeted routing is observable.
pub const SHARDS: [ShardId; 2] = [0, 1];

/// Instantiates each listed `async fn(TestApp)` once per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::TestApp::postgres().await).await;
                }
            )*
        }
    };
}

/// Configuration for tests: cheap hashing, limits out of the way.
pub fn test_config() -> ApiConfig {
    let mut config = ApiConfig::new("ws://127.0.0.1:9999");
    config.argon2 = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    config.rate_limits = RateLimitConfig {
        route_limit: 100_000,
        route_window: Duration::from_secs(1),
        global_per_second: 100_000,
    };
    config
}

pub struct TestApp {
    pub router: Router,
    pub topology: Arc<LocalTopology>,
    subscriptions: Mutex<HashMap<ShardId, Box<dyn Subscription>>>,
}

/// A registered account.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub token: String,
    pub id: UserId,
}

/// A guild created by a test, with its default text channel.
#[derive(Debug, Clone)]
pub struct TestGuild {
    pub id: GuildId,
    pub general: ChannelId,
    pub category: ChannelId,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON, after checking the exact JSON content type.
    #[track_caller]
    pub fn json(&self) -> Value {
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "JSON responses must carry exactly `application/json`"
        );
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    /// Asserts a status and returns the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Asserts 204 with an empty body.
    #[track_caller]
    pub fn no_content(&self) {
        assert_eq!(
            self.status,
            StatusCode::NO_CONTENT,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(self.body.is_empty(), "204 must have no body");
        assert!(self.headers.get("content-type").is_none());
    }

    /// Asserts a Discord error body with the given status and JSON code.
    #[track_caller]
    pub fn error(&self, status: u16, code: u64) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(body["code"], code, "body: {body}");
        assert!(body["message"].is_string(), "body: {body}");
        body
    }

    /// Asserts 400 / 50035 with `leaf` as the first error code at `path` in `errors`.
    #[track_caller]
    pub fn form_error(&self, path: &[&str], leaf: &str) -> Value {
        let body = self.error(400, 50035);
        assert_eq!(body["message"], "Invalid Form Body");
        let mut node = &body["errors"];
        for segment in path {
            node = &node[*segment];
        }
        assert_eq!(
            node["_errors"][0]["code"], leaf,
            "errors: {}",
            body["errors"]
        );
        assert!(node["_errors"][0]["message"].is_string());
        body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::with(
            &concord_store_sql::test_util::scratch_sqlite_url(),
            test_config(),
        )
        .await
    }

    pub async fn postgres() -> Self {
        Self::with(
            &concord_store_sql::test_util::scratch_postgres_url().await,
            test_config(),
        )
        .await
    }

    pub async fn with(url: &str, config: ApiConfig) -> Self {
        let store = concord_store_sql::connect(url)
            .await
            .expect("store connects and migrates");
        let bus = LocalBus::new(SHARDS.len() as u16);
        let topology = Arc::new(LocalTopology::new(SHARDS.len() as u16));
        let mut subscriptions = HashMap::new();
        for shard in SHARDS {
            subscriptions.insert(shard, bus.subscribe(shard).await.expect("subscribes"));
        }
        let state = AppState::new(
            store,
            bus,
            topology.clone(),
            TokenKey::new(&[7u8; 32]),
            Arc::new(SnowflakeGenerator::new(1, 1)),
            config,
        )
        .expect("valid config");
        Self {
            router: router(state),
            topology,
            subscriptions: Mutex::new(subscriptions),
        }
    }

    /// Sends a raw request.
    pub async fn call(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-reset-after",
            "x-ratelimit-bucket",
        ] {
            assert!(headers.contains_key(name), "{status} response lacks {name}");
        }
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// Sends `body` as JSON to `/api/v10{path}`, authenticated as `token` (with the `Bot` scheme).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v10{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bot {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&body).expect("json"))
            }
            None => Body::empty(),
        };
        self.call(request.body(body).expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> TestResponse {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> TestResponse {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.send(Method::PUT, path, token, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.send(Method::DELETE, path, token, None).await
    }

    /// Registers an account.
    pub async fn user(&self, username: &str) -> TestUser {
        let body = self
            .post(
                "/auth/register",
                None,
                json!({ "username": username, "password": "correct horse battery" }),
            )
            .await
            .ok(201);
        TestUser {
            token: body["token"].as_str().expect("token").to_owned(),
            id: body["user_id"]
                .as_str()
                .expect("user_id")
                .parse()
                .expect("snowflake"),
        }
    }

    /// Creates a guild owned by `owner`; both shards register interest so guild events are
    /// published to each of them.
    pub async fn guild(&self, owner: &TestUser, name: &str) -> TestGuild {
        let body = self
            .post("/guilds", Some(&owner.token), json!({ "name": name }))
            .await
            .ok(201);
        let id: GuildId = body["id"].as_str().expect("id").parse().expect("snowflake");
        let general: ChannelId = body["system_channel_id"]
            .as_str()
            .expect("system channel")
            .parse()
            .expect("id");
        let channels = self
            .get(&format!("/guilds/{id}/channels"), Some(&owner.token))
            .await
            .ok(200);
        let category = channels
            .as_array()
            .expect("channels")
            .iter()
            .find(|c| c["type"] == 4)
            .and_then(|c| c["id"].as_str())
            .expect("category")
            .parse()
            .expect("id");
        for shard in SHARDS {
            self.topology
                .change_interest(shard, &[(id, 1)])
                .await
                .expect("in-memory interest");
        }
        TestGuild {
            id,
            general,
            category,
        }
    }

    /// Makes `user` a member of `guild` through an invite created by `owner`.
    pub async fn join(&self, owner: &TestUser, guild: &TestGuild, user: &TestUser) {
        let invite = self
            .post(
                &format!("/channels/{}/invites", guild.general),
                Some(&owner.token),
                json!({}),
            )
            .await;
        let code = invite.ok(200)["code"].as_str().expect("code").to_owned();
        self.post(&format!("/invites/{code}"), Some(&user.token), json!({}))
            .await
            .ok(200);
    }

    /// Sends a message and returns it.
    pub async fn message(&self, user: &TestUser, channel: ChannelId, content: &str) -> Value {
        self.post(
            &format!("/channels/{channel}/messages"),
            Some(&user.token),
            json!({ "content": content }),
        )
        .await
        .ok(200)
    }

    /// Sets the `@everyone` overwrite of a channel (as the guild owner).
    pub async fn everyone_overwrite(
        &self,
        owner: &TestUser,
        guild: &TestGuild,
        channel: ChannelId,
        allow: u64,
        deny: u64,
    ) {
        let body = json!({ "permission_overwrites": [
            { "id": guild.id.to_string(), "type": 0, "allow": allow.to_string(), "deny": deny.to_string() }
        ]});
        self.patch(&format!("/channels/{channel}"), Some(&owner.token), body)
            .await
            .ok(200);
    }

    /// Everything published to `shard` so far (drains its channel).
    pub async fn published(&self, shard: ShardId) -> Vec<BusMessage> {
        let mut subscriptions = self.subscriptions.lock().await;
        let subscription = subscriptions.get_mut(&shard).expect("subscribed");
        let mut messages = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(5), subscription.next()).await
        {
            messages.push(message);
        }
        messages
    }

    /// Drains every shard.
    pub async fn clear_events(&self) {
        for shard in SHARDS {
            self.published(shard).await;
        }
    }

    /// Dispatches published to `shard` so far, in order.
    pub async fn dispatches(&self, shard: ShardId) -> Vec<Arc<Dispatch>> {
        self.published(shard)
            .await
            .into_iter()
            .filter_map(|m| match m {
                BusMessage::Dispatch(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// The one dispatch named `event` published to every shard of the guild: checks that each
    /// shard got the same allocation (encoded once) and returns it.
    pub async fn guild_dispatch(&self, event: &str) -> Arc<Dispatch> {
        let mut found: Option<Arc<Dispatch>> = None;
        for shard in SHARDS {
            let matching: Vec<_> = self
                .dispatches(shard)
                .await
                .into_iter()
                .filter(|d| d.kind.name() == event)
                .collect();
            assert_eq!(matching.len(), 1, "{event} on shard {shard}");
            if let Some(first) = &found {
                assert!(
                    Arc::ptr_eq(first, &matching[0]),
                    "one Arc<Dispatch> shared by all shards"
                );
            }
            found = Some(matching[0].clone());
        }
        found.expect("at least one shard")
    }

    pub fn user_shard(&self, user: UserId) -> ShardId {
        topology::user_slot(user, SHARDS.len() as u16)
    }
}

/// `d` of a dispatch as JSON.
pub fn data(dispatch: &Dispatch) -> Value {
    serde_json::from_slice(&dispatch.data).expect("dispatch data is JSON")
}
