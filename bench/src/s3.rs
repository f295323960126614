//! The S3 endpoint: PUT and GET of whole objects over HTTP with SigV4,
//! through the endpoint `hearth serve --s3-listen` runs (in this process,
//! on its own tokio runtime), against the raw file protocol underneath:
//! write, fsync, rename, fsync the directory; and a whole-file read.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use hearth_core::{Clock, SystemClock};
use hearth_r2::R2Limits;
use hearth_s3::sigv4::{self, CanonicalRequest, Credential, SigningKey};
use hearth_s3::{Access, Buckets, CredentialStore, S3Options, S3Server};

use crate::machine::Machine;
use crate::measure::{Plan, compare, fmt_latency, round_ratio_range};

#[derive(Debug, Args)]
pub struct S3Args {
    /// Measured operations per side for the 1 MiB cases.
    #[arg(long, default_value_t = 300)]
    pub small_ops: u64,
    /// Measured operations per side for the 64 MiB cases.
    #[arg(long, default_value_t = 20)]
    pub large_ops: u64,
    /// Rounds (alternating which side goes first).
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// Print only; do not write bench/S3-RESULTS.md.
    #[arg(long)]
    pub no_write: bool,
}

const BUCKET: &str = "bench";
const SMALL: usize = 1024 * 1024;
const LARGE: usize = 64 * 1024 * 1024;

/// A keep-alive HTTP/1.1 connection that signs each request (SigV4,
/// `UNSIGNED-PAYLOAD`, as SDKs do over TLS).
struct Client {
    addr: String,
    key: (String, String),
    conn: BufReader<TcpStream>,
    clock: SystemClock,
}

impl Client {
    fn new(addr: &str, key: (String, String)) -> Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Self {
            addr: addr.to_string(),
            key,
            conn: BufReader::with_capacity(256 * 1024, s),
            clock: SystemClock,
        })
    }

    fn head(&self, method: &str, path: &str, len: usize) -> String {
        let amz_date = hearth_s3::time::amz_date(self.clock.now_ms());
        let cred = Credential {
            access_key_id: self.key.0.clone(),
            date: amz_date[..8].to_string(),
            region: "auto".into(),
            service: "s3".into(),
        };
        let signed: Vec<String> = vec![
            "host".into(),
            "x-amz-content-sha256".into(),
            "x-amz-date".into(),
        ];
        let canonical_headers = format!(
            "host:{}\nx-amz-content-sha256:{}\nx-amz-date:{amz_date}\n",
            self.addr,
            sigv4::UNSIGNED_PAYLOAD
        );
        let cr = CanonicalRequest {
            method,
            raw_path: path,
            canonical_query: String::new(),
            canonical_headers,
            signed_headers: &signed,
            payload_hash: sigv4::UNSIGNED_PAYLOAD,
        };
        let sts = sigv4::string_to_sign(&amz_date, &cred.scope(), &cr.render());
        let sig = SigningKey::derive(&self.key.1, &cred).sign(&sts);
        format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nx-amz-content-sha256: {}\r\nx-amz-date: {amz_date}\r\nauthorization: AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature={sig}\r\ncontent-length: {len}\r\n\r\n",
            self.addr,
            sigv4::UNSIGNED_PAYLOAD,
            self.key.0,
            cred.scope()
        )
    }

    /// Sends a request; reads the response body into `out`; the status.
    fn call(&mut self, method: &str, path: &str, body: &[u8], out: &mut Vec<u8>) -> Result<u16> {
        let head = self.head(method, path, body.len());
        let s = self.conn.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut line = String::new();
        self.conn.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.conn.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse()?;
            }
        }
        out.clear();
        out.resize(len, 0);
        self.conn.read_exact(out)?;
        Ok(status)
    }
}

fn raw_put(dir: &Path, name: &str, body: &[u8], seq: u64) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{seq}"));
    let mut file = File::create_new(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

struct Row {
    case: String,
    s3: crate::measure::Stats,
    raw: crate::measure::Stats,
    spread: Option<(f64, f64)>,
}

pub fn run(args: &S3Args, command_line: &str) -> Result<()> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("hearth-bench-s3-")
        .tempdir_in(&base)?;
    let dir = tmp.path();
    let machine = Machine::describe(dir);
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; figures are only meaningful with --release");
    }
    let clock = SystemClock::shared();
    let bucket_dir = dir.join("r2").join(BUCKET);
    let raw_dir = dir.join("raw");
    fs::create_dir_all(&raw_dir)?;
    let store = CredentialStore::open(&dir.join("s3.sqlite"), &dir.join("s3.key"), clock.clone())?;
    let made = store.create("bench", vec![], Access::ReadWrite)?;
    let key = (
        made.info.access_key_id.clone(),
        made.secret_access_key.clone(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(S3Server::bind(S3Options {
        listen: "127.0.0.1:0".parse()?,
        buckets: Arc::new(Buckets::new(
            dir.join("r2"),
            BTreeMap::from([(BUCKET.to_string(), bucket_dir)]),
            false,
            clock.clone(),
            R2Limits::default(),
        )),
        credentials: Arc::new(store),
        clock,
        max_connections: 16,
    }))?;
    let addr = server.local_addr()?.to_string();
    runtime.spawn(server.run());

    let started = Instant::now();
    let mut rows = Vec::new();
    for (size, ops) in [(SMALL, args.small_ops), (LARGE, args.large_ops)] {
        let label = if size == SMALL { "1 MiB" } else { "64 MiB" };
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let plan = Plan {
            ops,
            warmup: 3,
            rounds: args.rounds,
            max_secs: 60.0,
        };
        let objects = 4u64;
        let mut client = Client::new(&addr, key.clone())?;
        let mut out = Vec::with_capacity(size);
        let [s3, raw] = compare(
            &plan,
            &mut |i| {
                let status = client.call(
                    "PUT",
                    &format!("/{BUCKET}/o{}", i % objects),
                    &body,
                    &mut out,
                )?;
                ensure!(
                    status == 200,
                    "S3 PUT answered {status}: {}",
                    String::from_utf8_lossy(&out)
                );
                Ok(())
            },
            &mut |i| raw_put(&raw_dir, &format!("o{}", i % objects), &body, i),
        )?;
        rows.push(Row {
            case: format!("PUT {label}"),
            s3: s3.stats(Some(size as u64)),
            raw: raw.stats(Some(size as u64)),
            spread: round_ratio_range(&s3, &raw),
        });
        let mut buf = Vec::with_capacity(size);
        let [s3, raw] = compare(
            &plan,
            &mut |i| {
                let status =
                    client.call("GET", &format!("/{BUCKET}/o{}", i % objects), &[], &mut out)?;
                ensure!(
                    status == 200 && out.len() == size,
                    "S3 GET answered {status}, {} bytes",
                    out.len()
                );
                Ok(())
            },
            &mut |i| {
                buf.clear();
                File::open(raw_dir.join(format!("o{}", i % objects)))?.read_to_end(&mut buf)?;
                if buf.len() != size {
                    bail!("raw read {} bytes", buf.len());
                }
                Ok(())
            },
        )?;
        rows.push(Row {
            case: format!("GET {label}"),
            s3: s3.stats(Some(size as u64)),
            raw: raw.stats(Some(size as u64)),
            spread: round_ratio_range(&s3, &raw),
        });
    }
    let text = render(
        &machine,
        command_line,
        args,
        &rows,
        started.elapsed().as_secs(),
    );
    println!("{text}");
    if !args.no_write {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("S3-RESULTS.md");
        fs::write(&path, &text)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn render(m: &Machine, command: &str, args: &S3Args, rows: &[Row], secs: u64) -> String {
    let mut s = String::new();
    s.push_str("# S3 endpoint benchmark: PUT/GET through R2's S3 API vs raw files\n\n");
    s.push_str(&format!(
        "Measured {} at revision `{}`, {} build, {secs} s for the whole run.\n\n",
        m.date_utc,
        m.revision.as_ref().map_or("unknown".into(), |r| format!(
            "{}{}",
            r.commit,
            if r.dirty { " (dirty)" } else { "" }
        )),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    ));
    s.push_str(&format!(
        "- CPU: {}, {} logical CPUs\n- Memory: {}\n- Kernel: {}\n- Filesystem: {}\n- Load average at the start: {}\n\n",
        m.cpu_model,
        m.logical_cpus,
        m.memory,
        m.kernel,
        m.filesystem,
        m.load_average.as_deref().unwrap_or("unknown")
    ));
    s.push_str(&format!("```sh\n{command}\n```\n\n"));
    s.push_str(&format!(
        "Method: the S3 side is the endpoint of `hearth serve --s3-listen` (hearth-s3 over an R2 bucket directory), started inside the benchmark process on a tokio runtime, and one client connection kept alive, each request signed with SigV4 (`UNSIGNED-PAYLOAD`; the body is still checked against Content-Length, and R2 hashes it with MD5 for the ETag). The raw side writes the same bytes to a file, fsyncs it, renames it over the old one and fsyncs the directory (the least a durable replace needs), and reads whole files back. Both sides cycle over 4 names, {} (1 MiB) and {} (64 MiB) measured operations each, after 3 unmeasured, in {} rounds that alternate which side goes first. Client and server share the machine's CPUs.\n\n",
        args.small_ops, args.large_ops, args.rounds
    ));
    s.push_str("| Case | S3 MB/s | Raw MB/s | S3/raw | S3 p50 | S3 p99 | Raw p50 | Raw p99 | S3/raw, middle half of rounds |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        let (a, b) = (
            r.s3.mb_per_sec.unwrap_or(0.0),
            r.raw.mb_per_sec.unwrap_or(0.0),
        );
        s.push_str(&format!(
            "| {} | {a:.0} | {b:.0} | {:.2} | {} | {} | {} | {} | {} |\n",
            r.case,
            if b > 0.0 { a / b } else { 0.0 },
            fmt_latency(r.s3.p50),
            fmt_latency(r.s3.p99),
            fmt_latency(r.raw.p50),
            fmt_latency(r.raw.p99),
            r.spread
                .map_or("–".into(), |(lo, hi)| format!("{lo:.2}–{hi:.2}"))
        ));
    }
    s.push_str("\nMB/s: 10^6 payload bytes per second. S3/raw: ratio of throughputs; 1.00 would mean the S3 layer (HTTP, SigV4, streaming through R2's temp-file-fsync-rename and SQLite commit) costs nothing over the bare file protocol.\n");
    s
}
