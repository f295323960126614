//! Out of file descriptors, the accept loop neither spins nor floods the
//! log, and serves the waiting clients once descriptors are free again. Its
//! own test binary: it lowers the process's open-files limit.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counts log lines that mention a failed accept.
#[derive(Clone)]
struct Counter(Arc<AtomicUsize>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        if line.contains("accept failed") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

fn set_soft_nofile(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain struct in and out.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let old = lim.rlim_cur;
        lim.rlim_cur = n;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failures_are_logged_at_most_once_per_interval() {
    let count = Arc::new(AtomicUsize::new(0));
    let writer = Counter(count.clone());
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .init();

    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "index.js",
            r#"export default { fetch() { return new Response("ok"); } };"#,
        )],
    );
    let mut opts = hearth_http::ServeOptions::new(small_config(dir.path()));
    opts.listen = "127.0.0.1:0".parse().unwrap();
    let server = hearth_http::Server::bind(opts).await.unwrap();
    let addr = server.local_addr();
    // Clients wait in the listen backlog before the server accepts any.
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        clients.push(c);
    }
    // Room for a handful of accepted connections, then EMFILE.
    let old = set_soft_nofile(open_fds() + 4);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lines = count.load(Ordering::Relaxed);
    set_soft_nofile(old);
    // A line every 10 ms would be ~150 here.
    assert!(
        (1..=2).contains(&lines),
        "{lines} accept-failure lines in 1.5 s"
    );

    // With descriptors back, every waiting client is answered.
    for c in &mut clients {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got))
            .await
            .expect("a waiting client was never answered")
            .unwrap();
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}
