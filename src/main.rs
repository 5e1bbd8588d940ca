//! `concord`: the all-in-one server. Parses configuration, starts every component, waits for
//! SIGINT/SIGTERM, then drains.

use anyhow::Context;
use clap::Parser;
use concord::config::Role;
use concord::role::{cluster_command, RoleServer};
use concord::{telemetry, Config, Server};

/// mimalloc returns freed pages to the system within about a second; with glibc's malloc, the
/// compression contexts that connections release when idle and the bursts of READY payloads
/// stayed in the heap and counted against the process's RSS (measured: 177 KiB per idle
/// `zlib-stream` session with glibc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init_tracing(config.log_format);
    if let Err(error) = config.validate() {
        eprintln!("concord: invalid configuration: {error}");
        std::process::exit(2);
    }
    match config.role.clone() {
        None => {
            tracing::info!(?config, "starting concord");
            let server = Server::start(config).await.context("starting concord")?;
            tracing::info!(addr = %server.addr(), admin = %server.admin_addr(), "concord is serving");
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        Some(Role::Cluster { action }) => {
            if let Err(error) = cluster_command(&config, action).await {
                eprintln!("concord cluster: {error:#}");
                std::process::exit(1);
            }
        }
        Some(role) => {
            tracing::info!(?config, ?role, "starting concord role");
            let server = match RoleServer::start(config).await {
                Ok(server) => server,
                Err(error) => {
                    eprintln!("concord {role:?}: {error:#}");
                    std::process::exit(1);
                }
            };
            tracing::info!(addr = ?server.addr(), admin = %server.admin_addr(), ?role, "serving");
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
