//! The bench's scenarios at small scale against a Concord started here (SQLite), run as the
//! real `bench` binary: setup, connect, fanout, post and resume, each checked through its JSON
//! report; and setup against a server lacking a route.

mod common;

use std::path::Path;

use clap::Parser;
use common::{bench, figure, report, succeeded, Scratch};
use concord::{Config, Server};
use serde_json::Value;

async fn start_concord(data: &Path) -> Server {
    let config = Config::try_parse_from([
        "concord".to_owned(),
        "--listen=127.0.0.1:0".to_owned(),
        "--admin-listen=127.0.0.1:0".to_owned(),
        // The SQLite database goes in the data directory, removed with it.
        format!("--data-dir={}", data.display()),
        "--shards=2".to_owned(),
        "--rate-limit-global=100000".to_owned(),
        "--rate-limit-route=100000".to_owned(),
        // Short, so that the sessions' heartbeats are exercised within a few seconds.
        "--heartbeat-interval-ms=1000".to_owned(),
    ])
    .unwrap();
    Server::start(config).await.expect("concord starts")
}

/// Runs `bench` with `args` split on spaces (no argument here holds one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_against_concord() {
    let scratch = Scratch::new("smoke");
    let server = start_concord(scratch.dir()).await;
    let target = format!("http://{}", server.addr());
    let fixture = scratch.path("fixture.json");

    let out = bench(
        format!(
            "setup --target {target} --users 20 --guilds 4 --members-per-guild 10 \
         --bots 2 --fixture {fixture}"
        )
        .split_whitespace(),
    )
    .await;
    succeeded("setup", &out);
    let written: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    assert_eq!(written["users"].as_array().unwrap().len(), 20);
    assert_eq!(written["bots"].as_array().unwrap().len(), 2);
    let guilds = written["guilds"].as_array().unwrap();
    assert_eq!(guilds.len(), 4);
    assert!(guilds
        .iter()
        .all(|g| g["members"].as_array().unwrap().len() == 10));

    // connect: 200 sessions over 20 users, two worker processes, zstd-stream.
    let json = scratch.path("connect.json");
    let out = bench(
        format!(
            "connect --fixture {fixture} --sessions 200 --rate 400 --duration 3s \
         --workers 2 --compress zstd-stream --json {json} --slo \
         failures=0,p99<10s"
        )
        .split_whitespace(),
    )
    .await;
    succeeded("connect", &out);
    let connect = report(&json);
    assert_eq!(figure(&connect, "ready"), 200.0);
    assert_eq!(figure(&connect, "sessions_held"), 200.0);
    assert_eq!(figure(&connect, "connect_failures"), 0.0);
    assert_eq!(figure(&connect, "workers"), 2.0);
    assert!(
        figure(&connect, "heartbeat_acks") > 0.0,
        "heartbeats were acknowledged"
    );
    assert!(figure(&connect, "connect_rate") > 0.0);
    assert_eq!(connect["histograms"]["ready"]["count"], 200);
    assert_eq!(connect["histograms"]["guilds"]["count"], 200);
    assert!(
        connect["histograms"]["ready"]["hdr_v2_base64"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("ready") && table.contains("p99"), "{table}");

    // fanout: every delivery checked, zlib-stream.
    let json = scratch.path("fanout.json");
    let out = bench(
        format!(
            "fanout --fixture {fixture} --sessions 200 --rate 40 --duration 6s \
         --compress zlib-stream --json {json} --slo missing=0,duplicates=0,gaps=0"
        )
        .split_whitespace(),
    )
    .await;
    succeeded("fanout", &out);
    let fanout = report(&json);
    let posted = figure(&fanout, "messages_posted");
    assert!(posted > 100.0, "{posted} messages posted");
    // 20 users in 200 sessions, 10 members per guild: each message reaches 100 sessions.
    assert_eq!(figure(&fanout, "expected"), posted * 100.0);
    assert_eq!(figure(&fanout, "deliveries"), figure(&fanout, "expected"));
    assert_eq!(figure(&fanout, "missing"), 0.0);
    assert_eq!(figure(&fanout, "duplicates"), 0.0);
    assert_eq!(figure(&fanout, "gaps"), 0.0);
    assert_eq!(figure(&fanout, "posts_failed"), 0.0);
    let delivery = &fanout["histograms"]["delivery"];
    assert_eq!(
        delivery["count"].as_f64().unwrap(),
        figure(&fanout, "deliveries")
    );
    assert!(delivery["p99_us"].as_u64().unwrap() > 0);
    assert_eq!(
        fanout["histograms"]["last_recipient"]["count"]
            .as_f64()
            .unwrap(),
        posted
    );
    // The three asked for, and `failures=0` implied.
    assert_eq!(fanout["slo"].as_array().unwrap().len(), 4);

    // post: REST throughput with errors classified.
    let json = scratch.path("post.json");
    let out = bench(
        format!("post --fixture {fixture} --concurrency 8 --duration 2s --json {json}")
            .split_whitespace(),
    )
    .await;
    succeeded("post", &out);
    let post = report(&json);
    assert!(figure(&post, "posts_ok") > 10.0);
    assert_eq!(figure(&post, "errors"), 0.0);
    assert_eq!(post["primary_histogram"], "post");
    assert_eq!(
        post["breakdowns"]["post_status"]["200"].as_f64(),
        Some(figure(&post, "posts_ok"))
    );

    // resume: half the sockets cut without a close frame; they must resume with a full replay.
    let json = scratch.path("resume.json");
    let out = bench(
        format!(
            "resume --fixture {fixture} --sessions 200 --rate 40 --duration 6s --at \
         2s --command true --drop-fraction 0.5 --json {json} --slo \
         missing=0,lost=0"
        )
        .split_whitespace(),
    )
    .await;
    succeeded("resume", &out);
    let resume = report(&json);
    assert!(figure(&resume, "dropped_by_bench") > 50.0);
    assert_eq!(
        figure(&resume, "sessions_resumed"),
        figure(&resume, "dropped_by_bench")
    );
    assert!(figure(&resume, "sessions_resumed") > 0.0);
    assert_eq!(figure(&resume, "lost"), 0.0);
    assert_eq!(figure(&resume, "sessions_reidentified"), 0.0);
    assert_eq!(figure(&resume, "missing"), 0.0);
    assert_eq!(figure(&resume, "duplicates"), 0.0);
    assert_eq!(figure(&resume, "gaps"), 0.0);
    assert!(figure(&resume, "resumed.expected") > 0.0);
    assert_eq!(figure(&resume, "resumed.missing"), 0.0);
    assert_eq!(figure(&resume, "command_exit_code"), 0.0);

    // An objective that cannot hold makes the exit code 1.
    let out = bench(
        format!("connect --fixture {fixture} --sessions 10 --duration 0s --slo p99<1us")
            .split_whitespace(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("p99<1us"));

    server.shutdown().await;
}

/// A server that registers accounts but has no guild routes.
async fn partial_server() -> String {
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router};
    let app = Router::new()
        .route(
            "/api/v10/auth/register",
            post(|| async {
                (
                    StatusCode::CREATED,
                    Json(serde_json::json!({"token": "t", "user_id": "1"})),
                )
            }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"message": "404: Not Found", "code": 0})),
            )
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_names_the_missing_route() {
    let scratch = Scratch::new("routes");
    let target = partial_server().await;
    let fixture = scratch.path("fixture.json");
    let out = bench(
        format!("setup --target {target} --users 2 --guilds 1 --fixture {fixture}")
            .split_whitespace(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not implement POST /api/v10/guilds"),
        "the message names the route: {stderr}"
    );
    assert!(
        !Path::new(&fixture).exists(),
        "no fixture from a failed setup"
    );

    // Without the fixture, scenarios say what to do.
    let out = bench(format!("connect --fixture {fixture}").split_whitespace()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bench setup"));
}
