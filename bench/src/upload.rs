//! A large upload streamed through a worker into R2 (`env.BUCKET.put(key,
//! request.body)`) against a raw hyper server writing the same body to a
//! file, over loopback in the same run, rounds interleaved. Also the
//! server's peak RSS (VmHWM) while Hearth takes the uploads.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::machine::Machine;

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The hearth binary.
    #[arg(long, env = "HEARTH_BIN", default_value = "target/release/hearth")]
    pub hearth_bin: PathBuf,
    /// Bytes per upload.
    #[arg(long, default_value_t = 1 << 30)]
    pub bytes: u64,
    /// Uploads per side, interleaved (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long, default_value = "bench/UPLOAD-RESULTS.md")]
    pub out: PathBuf,
}

const WORKER: &str = r#"export default {
  async fetch(request, env) {
    const o = await env.BUCKET.put(new URL(request.url).pathname.slice(1), request.body);
    return new Response(String(o.size));
  },
};
"#;

/// `hearth serve` on a one-bucket project in `dir`.
struct Hearth {
    child: Child,
    addr: String,
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_hearth(bin: &Path, dir: &Path, max_body: u64) -> Result<Hearth> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("src/index.js"), WORKER)?;
    std::fs::write(
        dir.join("wrangler.toml"),
        "name = \"upload\"\nmain = \"src/index.js\"\ncompatibility_date = \"2024-09-23\"\n\
         [limits]\ncpu_ms = 300000\n[[r2_buckets]]\nbinding = \"BUCKET\"\nbucket_name = \"upload\"\n",
    )?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(dir.join("wrangler.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--max-request-body"])
        .arg(max_body.to_string())
        .env("HEARTH_LOG", "warn,hearth=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let mut tx = Some(tx);
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(rest) = seen.split(" on http://").nth(1)
                && let Some(addr) = rest.split_whitespace().next()
                && let Some(t) = tx.take()
            {
                let _ = t.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("hearth serve did not report its address")?;
    Ok(Hearth { child, addr })
}

/// A raw hyper server writing each PUT's body to a file as it arrives,
/// synced before the answer (as R2's put is). Runs on its own runtime.
fn serve_raw(dir: PathBuf) -> Result<String> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the raw server");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let mut n = 0u64;
            while let Ok((stream, _)) = listener.accept().await {
                n += 1;
                let path = dir.join(format!("upload-{n}"));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let path = path.clone();
                        async move { raw_put(req, &path).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

async fn raw_put(
    req: hyper::Request<Incoming>,
    path: &Path,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let mut file = std::fs::File::create(path)?;
    let mut body = req.into_body();
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data)?;
            size += data.len() as u64;
        }
    }
    file.sync_all()?;
    drop(file);
    std::fs::remove_file(path)?;
    Ok(hyper::Response::new(Full::new(Bytes::from(
        size.to_string(),
    ))))
}

/// One PUT of `len` bytes; the seconds from the first byte sent to the
/// answer read.
fn upload(addr: &str, path: &str, len: u64, block: &[u8]) -> Result<f64> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\ncontent-length: {len}\r\n\r\n"
    )?;
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < len {
        let n = block.len().min((len - sent) as usize);
        s.write_all(&block[..n])?;
        sent += n as u64;
    }
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let secs = t.elapsed().as_secs_f64();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if !response.starts_with("HTTP/1.1 200") || body != len.to_string() {
        bail!("PUT {path} to {addr}: {response}");
    }
    Ok(secs)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: &UploadArgs, command: &str) -> Result<()> {
    if args.rounds == 0 || args.bytes == 0 {
        bail!("--rounds and --bytes must be at least 1");
    }
    let tmp = tempfile::tempdir_in(".").context("a scratch directory here")?;
    let machine = Machine::describe(tmp.path());
    let hearth = serve_hearth(&args.hearth_bin, &tmp.path().join("hearth"), args.bytes)?;
    let raw_dir = tmp.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let raw = serve_raw(raw_dir)?;
    // The same bytes for both sides, cheap to send: the client shares the
    // cores with the server.
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (mut h, mut r) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Alternate which side goes first.
        let key = format!("/object-{round}");
        if round % 2 == 0 {
            h.push(upload(&hearth.addr, &key, args.bytes, &block)?);
            r.push(upload(&raw, &key, args.bytes, &block)?);
        } else {
            r.push(upload(&raw, &key, args.bytes, &block)?);
            h.push(upload(&hearth.addr, &key, args.bytes, &block)?);
        }
        eprintln!(
            "round {}: hearth {:.1} s, raw {:.1} s",
            round + 1,
            h[round],
            r[round]
        );
    }
    let hwm = vm_hwm_kib(hearth.child.id());
    let mbs = |secs: f64| args.bytes as f64 / secs / 1e6;
    let (hm, rm) = (mbs(median(h.clone())), mbs(median(r.clone())));
    let mut s = String::new();
    let _ = writeln!(s, "# Streamed upload benchmark\n");
    let _ = writeln!(
        s,
        "A {} MiB PUT streamed through a worker into R2 (`await env.BUCKET.put(key, request.body)`), against a raw hyper server writing the body to a file as it arrives (one runtime thread, synced before answering, as R2's put is). One client over loopback sending a fixed 1 MiB block repeatedly; {} uploads per side, interleaved; medians. Run on demand, never in CI.\n",
        args.bytes >> 20,
        args.rounds
    );
    s.push_str(&machine.markdown_facts(command));
    let _ = writeln!(s, "\n| Case | MB/s | ratio |\n|---|---:|---:|");
    let _ = writeln!(s, "| Raw hyper, body to a file | {rm:.0} | 1.00 |");
    let _ = writeln!(
        s,
        "| Hearth, worker `put(key, request.body)` into R2 | {hm:.0} | {:.2} |",
        hm / rm
    );
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.0}", mbs(*x)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "\nRounds (MB/s): Hearth {}; raw {}.\n", fmt(&h), fmt(&r));
    match hwm {
        Some(kib) => {
            let _ = writeln!(
                s,
                "Hearth server peak RSS (VmHWM, from start-up through every upload): {:.1} MiB.",
                kib as f64 / 1024.0
            );
        }
        None => {
            let _ = writeln!(s, "Peak RSS: /proc not readable here.");
        }
    }
    std::fs::write(&args.out, &s).with_context(|| format!("writing {}", args.out.display()))?;
    print!("{s}");
    Ok(())
}
