//! Logging and metrics set-up for the binary.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the tracing subscriber: `RUST_LOG` filter (default `info`), text or JSON lines.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json())
            .try_init(),
    };
    // A second initialisation (several servers in one test process) keeps the first subscriber.
    let _ = result;
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed, in which case ours stays unused.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            handle
        })
        .clone()
}

/// Help text for every metric the processes export: Prometheus tooling (`promtool check
/// metrics`, Grafana's metric browser) expects a `# HELP` line per metric, and the exporter
/// writes one only for described metrics. `scripts/monitoring_check.py` fails when a metric
/// name used in the code is missing here.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

    describe_counter!(
        "concord_api_requests_total",
        "REST requests answered, by route template, method and status."
    );
    describe_histogram!(
        "concord_api_request_duration_seconds",
        Unit::Seconds,
        "REST request handling time, by route template and method."
    );
    describe_gauge!(
        "concord_api_publish_backlog",
        "Events committed to the database and not yet published (Redis unreachable)."
    );
    describe_counter!(
        "concord_api_publish_errors_total",
        "Event publishes that failed and went to the backlog."
    );
    describe_counter!(
        "concord_api_interest_errors_total",
        "Guild interest lookups or join holds that failed."
    );
    describe_counter!(
        "concord_api_invalidation_errors_total",
        "Cache invalidation notices that could not be sent to the other API processes."
    );
    describe_counter!(
        "concord_api_shared_rate_limit_errors_total",
        "Rate-limit windows counted locally because Redis failed."
    );
    describe_counter!(
        "concord_bus_published_total",
        "Events appended to the event bus, by bus."
    );
    describe_counter!(
        "concord_bus_publish_errors_total",
        "Event bus appends that failed, by bus."
    );
    describe_counter!(
        "concord_bus_read_errors_total",
        "Slot log reads that failed, by bus."
    );
    describe_counter!(
        "concord_bus_decode_errors_total",
        "Event bus entries that could not be decoded, by bus."
    );
    describe_counter!(
        "concord_bus_duplicates_dropped_total",
        "Event bus entries dropped as duplicates of an event already applied, by bus."
    );
    describe_gauge!(
        "concord_gateway_sessions",
        "Live gateway sessions, by slot."
    );
    describe_gauge!(
        "concord_gateway_connections",
        "Open gateway WebSocket connections."
    );
    describe_counter!(
        "concord_gateway_dispatches_total",
        "Dispatches sequenced for sessions, by event name."
    );
    describe_histogram!(
        "concord_gateway_identify_seconds",
        Unit::Seconds,
        "Time from Identify to READY being queued."
    );
    describe_histogram!(
        "concord_gateway_identify_wait_seconds",
        Unit::Seconds,
        "Time a bot Identify waited for its max_concurrency bucket."
    );
    describe_counter!(
        "concord_gateway_close_total",
        "Gateway connections closed, by close code or client_normal, client_other, dropped."
    );
    describe_counter!(
        "concord_gateway_interest_errors_total",
        "Guild interest updates that failed."
    );
    describe_gauge!("concord_gateway_slots_owned", "Slots this process holds.");
    describe_gauge!(
        "concord_gateway_links",
        "Open router-to-shard links (one per router and shard process pair; each end counts)."
    );
    describe_counter!(
        "concord_gateway_slot_changes_total",
        "Slot ownership changes, by event: acquired, released or fenced."
    );
}
