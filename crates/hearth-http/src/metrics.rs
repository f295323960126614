//! Counters for `/__hearth/metrics`, in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hearth_runtime::{DispatchError, IsolateSnapshot};

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

pub(crate) struct Metrics {
    /// Requests by status code, indexed 0..=599.
    by_status: Vec<AtomicU64>,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    exceptions: AtomicU64,
    cpu_limit: AtomicU64,
    memory_limit: AtomicU64,
    other_errors: AtomicU64,
    /// Requests shed with 503 because every isolate's queue was full.
    overloaded: AtomicU64,
    /// Client connections refused at the connection cap.
    pub(crate) connections_refused: AtomicU64,
    /// Request bodies cut off for arriving under the minimum data rate.
    pub(crate) slow_bodies: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            by_status: (0..600).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
            exceptions: AtomicU64::new(0),
            cpu_limit: AtomicU64::new(0),
            memory_limit: AtomicU64::new(0),
            other_errors: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            slow_bodies: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub(crate) fn observe(&self, status: u16, elapsed: Duration) {
        if let Some(c) = self.by_status.get(status as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_error(&self, err: &DispatchError) {
        let c = match err {
            DispatchError::Exception { .. } => &self.exceptions,
            DispatchError::CpuLimit { .. } => &self.cpu_limit,
            DispatchError::MemoryLimit { .. } => &self.memory_limit,
            DispatchError::Overloaded { .. } => &self.overloaded,
            _ => &self.other_errors,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn render(&self, isolates: &[IsolateSnapshot], open_connections: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hearth_connections_open Client connections open now."
        );
        let _ = writeln!(out, "# TYPE hearth_connections_open gauge");
        let _ = writeln!(out, "hearth_connections_open {open_connections}");
        let _ = writeln!(
            out,
            "# HELP hearth_connections_refused_total Connections refused at the connection cap (max_connections)."
        );
        let _ = writeln!(out, "# TYPE hearth_connections_refused_total counter");
        let _ = writeln!(
            out,
            "hearth_connections_refused_total {}",
            self.connections_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP hearth_slow_request_bodies_total Request bodies cut off under the minimum data rate."
        );
        let _ = writeln!(out, "# TYPE hearth_slow_request_bodies_total counter");
        let _ = writeln!(
            out,
            "hearth_slow_request_bodies_total {}",
            self.slow_bodies.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP hearth_requests_total Requests answered by the worker, by status."
        );
        let _ = writeln!(out, "# TYPE hearth_requests_total counter");
        for (status, c) in self.by_status.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "hearth_requests_total{{status=\"{status}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP hearth_request_duration_seconds Time from request to response head."
        );
        let _ = writeln!(out, "# TYPE hearth_request_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "hearth_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "hearth_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "hearth_request_duration_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "hearth_request_duration_seconds_count {count}");

        let _ = writeln!(
            out,
            "# HELP hearth_worker_errors_total Requests the worker failed, by kind."
        );
        let _ = writeln!(out, "# TYPE hearth_worker_errors_total counter");
        for (kind, c) in [
            ("exception", &self.exceptions),
            ("cpu_limit", &self.cpu_limit),
            ("memory_limit", &self.memory_limit),
            ("other", &self.other_errors),
        ] {
            let _ = writeln!(
                out,
                "hearth_worker_errors_total{{kind=\"{kind}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }

        let _ = writeln!(
            out,
            "# HELP hearth_overloaded_total Requests answered 503 because every isolate's queue was full."
        );
        let _ = writeln!(out, "# TYPE hearth_overloaded_total counter");
        let _ = writeln!(
            out,
            "hearth_overloaded_total {}",
            self.overloaded.load(Ordering::Relaxed)
        );

        let _ = writeln!(
            out,
            "# HELP hearth_cpu_seconds_total JavaScript execution time, by isolate."
        );
        let _ = writeln!(out, "# TYPE hearth_cpu_seconds_total counter");
        for s in isolates {
            let _ = writeln!(
                out,
                "hearth_cpu_seconds_total{{isolate=\"{}\"}} {}",
                s.index,
                s.cpu_micros as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP hearth_isolate_restarts_total Isolates rebuilt after a fatal fault."
        );
        let _ = writeln!(out, "# TYPE hearth_isolate_restarts_total counter");
        for s in isolates {
            let _ = writeln!(
                out,
                "hearth_isolate_restarts_total{{isolate=\"{}\"}} {}",
                s.index, s.restarts
            );
        }
        let _ = writeln!(
            out,
            "# HELP hearth_isolate_requests_in_flight Requests an isolate is working on."
        );
        let _ = writeln!(out, "# TYPE hearth_isolate_requests_in_flight gauge");
        for s in isolates {
            let _ = writeln!(
                out,
                "hearth_isolate_requests_in_flight{{isolate=\"{}\"}} {}",
                s.index, s.in_flight
            );
        }
        out
    }
}

/// Cluster mode's per-node counters, labelled with the node id so the
/// nodes' scrapes add up.
pub(crate) fn cluster_text(node: &hearth_runtime::cluster::ClusterNode, http: &Metrics) -> String {
    let id = node.node_id();
    let served: u64 = http
        .by_status
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum();
    let c = node.counters();
    let p = node.placement().counters();
    let log = node.log_counters();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{node=\"{id}\"{labels}}} {value}");
        }
    };
    metric(
        "hearth_cluster_requests_served_total",
        "counter",
        "Requests this node answered on its listeners.",
        &[("", served)],
    );
    metric(
        "hearth_cluster_object_calls_total",
        "counter",
        "Durable Object calls run on this node.",
        &[("", get(&c.object_calls))],
    );
    metric(
        "hearth_cluster_forwarded_total",
        "counter",
        "Durable Object calls forwarded between nodes, by direction.",
        &[
            (",direction=\"in\"", get(&c.forwarded_in)),
            (",direction=\"out\"", get(&c.forwarded_out)),
        ],
    );
    metric(
        "hearth_cluster_objects_owned",
        "gauge",
        "Durable Object leases this node holds now (as it last saw them).",
        &[("", node.placement().owned_count() as u64)],
    );
    metric(
        "hearth_cluster_leases_total",
        "counter",
        "Durable Object leases taken, lost to a newer owner, and handed over by a drain.",
        &[
            (",event=\"acquired\"", get(&p.acquired)),
            (",event=\"lost\"", get(&p.lost)),
            (",event=\"released\"", get(&p.released)),
        ],
    );
    metric(
        "hearth_cluster_shipped_commits_total",
        "counter",
        "Durable Object commits appended to the log in PostgreSQL.",
        &[("", get(&log.commits))],
    );
    metric(
        "hearth_cluster_shipped_bytes_total",
        "counter",
        "WAL frame bytes of those commits.",
        &[("", get(&log.bytes))],
    );
    metric(
        "hearth_cluster_backend_errors_total",
        "counter",
        "Calls to a shared backend that failed, by backend.",
        &[
            (
                ",backend=\"postgres\"",
                get(&c.postgres_errors) + get(&log.errors),
            ),
            (",backend=\"redis\"", node.redis().map_or(0, |r| r.errors())),
            (",backend=\"node\"", get(&c.forward_errors)),
        ],
    );
    let _ = writeln!(
        out,
        "# HELP hearth_cluster_draining Whether this node is draining or drained.\n# TYPE hearth_cluster_draining gauge\nhearth_cluster_draining{{node=\"{id}\"}} {}",
        u8::from(node.placement().draining())
    );
    out
}
