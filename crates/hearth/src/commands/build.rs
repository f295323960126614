//! `[build].command`: run through `sh -c` before serving, as `wrangler dev`
//! does, and again in `hearth dev` when a file under `[build].watch_dir`
//! changes. Its output goes to stderr as it comes; a failure ends start-up
//! with the command's exit status and the last lines it printed.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use crate::project::Project;

/// Lines of a failed build's output repeated in its error.
pub const BUILD_OUTPUT_TAIL_LINES: usize = 20;
/// Most files `hearth dev` stamps under the watch directories; past it the
/// rest are not watched (and a warning says so).
pub const MAX_WATCHED_BUILD_FILES: usize = 20_000;
/// wrangler's default `watch_dir`.
const DEFAULT_WATCH_DIR: &str = "src";
/// Directories under a watch directory that never hold the build's input.
const UNWATCHED_DIRS: [&str; 4] = ["node_modules", ".git", ".hearth", ".wrangler"];

/// The build command exited unsuccessfully; `hearth` exits with its code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BuildFailed {
    /// The command's exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    message: String,
}

/// A config's `[build]`, resolved against its directory.
#[derive(Debug, Clone)]
pub struct Build {
    command: String,
    cwd: PathBuf,
    watch_dirs: Vec<PathBuf>,
    config: PathBuf,
}

type Stamp = Option<(SystemTime, u64)>;

impl Build {
    /// `None` when the config has no `[build].command`.
    pub fn of(project: &Project) -> Option<Build> {
        let config = &project.config;
        let command = config.build.command.clone()?;
        let dir = config.dir();
        let cwd = match &config.build.cwd {
            Some(cwd) => dir.join(cwd),
            None => dir.to_path_buf(),
        };
        let watch_dirs = if config.build.watch_dir.is_empty() {
            vec![dir.join(DEFAULT_WATCH_DIR)]
        } else {
            config.build.watch_dir.iter().map(|d| dir.join(d)).collect()
        };
        Some(Build {
            command,
            cwd,
            watch_dirs,
            config: config.path.clone(),
        })
    }

    /// Runs the command to completion, passing its output through.
    pub fn run(&self) -> Result<()> {
        tracing::info!(
            "running [build].command {:?} in {}",
            self.command,
            self.cwd.display()
        );
        let started = Instant::now();
        // One pipe for both streams keeps the output in the order printed.
        let (reader, writer) = std::io::pipe().context("creating a pipe for the build's output")?;
        let writer_err = writer
            .try_clone()
            .context("creating a pipe for the build's output")?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_err);
        let spawned = command.spawn();
        // The command holds the pipe's write ends; the relay sees the end of
        // the output only once they are closed.
        drop(command);
        let mut child = spawned.with_context(|| {
            format!(
                "{}: build.command: cannot start `sh -c {:?}` in {}",
                self.config.display(),
                self.command,
                self.cwd.display()
            )
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let relayed = relay(reader, tail.clone());
        let status = child.wait().context("waiting for the build command")?;
        let _ = relayed.join();
        if status.success() {
            tracing::info!("build finished in {} ms", started.elapsed().as_millis());
            return Ok(());
        }
        let lines: Vec<String> = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let ended = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => format!("{status}"),
        };
        let mut message = format!(
            "{}: build.command {:?} failed ({ended}) in {}",
            self.config.display(),
            self.command,
            self.cwd.display()
        );
        if lines.is_empty() {
            message.push_str("; it printed nothing");
        } else {
            message.push_str("; the end of its output:\n");
            message.push_str(&lines.join("\n"));
        }
        message.push_str("\n(fix the build, or start with --no-build to serve what is there)");
        Err(BuildFailed {
            code: status.code(),
            message,
        }
        .into())
    }

    /// Modification time and size of every file under the watch
    /// directories, skipping dependency and state directories.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Stamp> {
        let mut out = BTreeMap::new();
        let mut pending: Vec<PathBuf> = self.watch_dirs.clone();
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if out.len() >= MAX_WATCHED_BUILD_FILES {
                    return out;
                }
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    let skip = entry
                        .file_name()
                        .to_str()
                        .is_some_and(|n| UNWATCHED_DIRS.contains(&n));
                    if !skip {
                        pending.push(path);
                    }
                } else {
                    let stamp = entry
                        .metadata()
                        .ok()
                        .and_then(|m| Some((m.modified().ok()?, m.len())));
                    out.insert(path, stamp);
                }
            }
        }
        out
    }

    /// The watch directories, for log lines.
    pub fn watched(&self) -> String {
        self.watch_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs the config's build command, if it has one, before serving.
pub fn run(project: &Project) -> Result<()> {
    match Build::of(project) {
        Some(build) => build.run(),
        None => Ok(()),
    }
}

/// Copies a child's output to stderr line by line, keeping the last
/// [`BUILD_OUTPUT_TAIL_LINES`] for the error.
fn relay(
    from: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let _ = std::io::stderr().write_all(&buf);
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            if let Ok(mut t) = tail.lock() {
                if t.len() == BUILD_OUTPUT_TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    })
}
