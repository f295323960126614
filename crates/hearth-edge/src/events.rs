//! Security events: every block and log decision, kept in memory (the
//! newest `max_events`) and appended as JSON lines to
//! `<data dir>/edge/events.jsonl` by a writer thread. The file is capped:
//! past [`MAX_FILE_BYTES`] it is renamed to `events.jsonl.1` (replacing the
//! older one) and started afresh. A full writer queue drops the event from
//! the file (it stays in memory) and counts the drop.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};

/// Size at which the events file is rotated.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
const QUEUE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityEvent {
    pub time_ms: u64,
    pub ray: String,
    /// `auth`, `custom_rules`, `rate_limits` or `managed_rules`.
    pub phase: String,
    pub rule: String,
    /// `block` or `log`.
    pub action: String,
    pub client_ip: String,
    pub host: String,
    pub method: String,
    pub path: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct EventLog {
    recent: Mutex<VecDeque<SecurityEvent>>,
    max: AtomicU64,
    counts: Mutex<BTreeMap<(String, String, String), u64>>,
    sink: Option<SyncSender<SecurityEvent>>,
    dropped: AtomicU64,
}

/// Where the events file lives under a data directory.
pub fn events_path(data_dir: &Path) -> PathBuf {
    data_dir.join("edge").join("events.jsonl")
}

impl EventLog {
    /// A log kept in memory only.
    pub fn memory(max: usize) -> EventLog {
        EventLog {
            recent: Mutex::new(VecDeque::new()),
            max: AtomicU64::new(max as u64),
            counts: Mutex::new(BTreeMap::new()),
            sink: None,
            dropped: AtomicU64::new(0),
        }
    }

    /// A log that also appends to `path`.
    pub fn with_file(max: usize, path: PathBuf) -> std::io::Result<EventLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<SecurityEvent>(QUEUE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        std::thread::Builder::new().name("hearth-edge-events".into()).spawn(move || {
            let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
            while let Ok(ev) = rx.recv() {
                let Ok(mut line) = serde_json::to_vec(&ev) else { continue };
                line.push(b'\n');
                if size + line.len() as u64 > MAX_FILE_BYTES {
                    let _ = std::fs::rename(&path, path.with_extension("jsonl.1"));
                    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
                        Ok(f) => file = f,
                        Err(e) => {
                            tracing::warn!(target: "hearth::edge", "security events file {}: {e}", path.display());
                            continue;
                        }
                    }
                    size = 0;
                }
                if file.write_all(&line).is_ok() {
                    size += line.len() as u64;
                }
            }
        })?;
        let mut log = EventLog::memory(max);
        log.sink = Some(tx);
        Ok(log)
    }

    pub fn set_max(&self, max: usize) {
        self.max.store(max as u64, Ordering::Relaxed);
    }

    pub fn record(&self, ev: SecurityEvent) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            *counts
                .entry((ev.phase.clone(), ev.rule.clone(), ev.action.clone()))
                .or_default() += 1;
        }
        if let Some(tx) = &self.sink {
            match tx.try_send(ev.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let max = self.max.load(Ordering::Relaxed) as usize;
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent.len() >= max.max(1) {
            recent.pop_front();
        }
        recent.push_back(ev);
    }

    /// The newest events, oldest first.
    pub fn recent(&self) -> Vec<SecurityEvent> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Prometheus text for `/__hearth/metrics`.
    pub fn metrics_text(&self) -> String {
        let mut out = String::from(
            "# HELP hearth_edge_events_total Edge decisions (block or log) by phase, rule and action.\n# TYPE hearth_edge_events_total counter\n",
        );
        for ((phase, rule, action), n) in
            self.counts.lock().unwrap_or_else(|p| p.into_inner()).iter()
        {
            let rule = rule.replace(['"', '\\', '\n'], "_");
            out.push_str(&format!("hearth_edge_events_total{{phase=\"{phase}\",rule=\"{rule}\",action=\"{action}\"}} {n}\n"));
        }
        out.push_str(&format!(
            "# HELP hearth_edge_events_dropped_total Events not written to the events file because its queue was full.\n# TYPE hearth_edge_events_dropped_total counter\nhearth_edge_events_dropped_total {}\n",
            self.dropped.load(Ordering::Relaxed)
        ));
        out
    }
}

/// Reads the events file(s) under `data_dir`, oldest first; unreadable
/// lines are skipped.
pub fn read_events(data_dir: &Path) -> std::io::Result<Vec<SecurityEvent>> {
    let path = events_path(data_dir);
    let mut out = Vec::new();
    for p in [path.with_extension("jsonl.1"), path] {
        match std::fs::read_to_string(&p) {
            Ok(text) => out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
