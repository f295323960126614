//! Outbound TCP for `cloudflare:sockets`' `connect()` (and `node:net` over
//! it): plain, TLS, or plain upgraded to TLS later (`startTls`, which
//! Postgres drivers use). Each socket is a task on the isolate's loop that
//! reports to JS through [`HostEvent::Tcp`].
//!
//! Bounds, as for fetch: a socket counts as a subrequest; a request has at
//! most [`MAX_OPEN_PER_REQUEST`] open at once; data is read at most
//! [`FETCH_READ_AHEAD_BYTES`] ahead of the worker's stream; one write is in
//! flight at a time (the JS side awaits each); a connect times out with
//! the subrequest timeout. Port 25 is refused, as on Workers. A socket
//! closes when the request that opened it ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::host::Host;
use super::{FETCH_READ_AHEAD_BYTES, HostEvent};

/// Sockets one request may have open at once (Workers allows six
/// simultaneous open connections per request).
pub(crate) const MAX_OPEN_PER_REQUEST: usize = 6;
/// Bytes read from the network per chunk.
const READ_CHUNK: usize = 16 * 1024;

/// What a socket task tells JS.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// Connected: the remote and local addresses.
    Opened {
        remote: String,
        local: String,
    },
    Data(Bytes),
    /// The other side finished sending.
    ReadEnd,
    /// The write in flight was sent.
    Written,
    /// `startTls` completed.
    TlsUpgraded,
    /// The socket is closed; `Some` when because of an error.
    Closed(Option<String>),
}

/// What JS asks of a socket task.
pub(super) enum TcpCmd {
    Write(Bytes),
    /// Ends the sending side; reading goes on until the other side ends.
    ShutdownWrite,
    /// Closes the socket (both directions).
    Close,
    /// Upgrades the plain connection to TLS for this server name.
    StartTls(String),
}

/// The isolate's handle on one socket task.
pub(super) struct TcpHandle {
    pub(super) cmds: mpsc::Sender<TcpCmd>,
    pub(super) credits: Arc<Semaphore>,
    pub(super) task: tokio::task::AbortHandle,
    pub(super) owner: u64,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => write_flush(s, buf).await,
            Stream::Tls(s) => write_flush(s.as_mut(), buf).await,
        }
    }
    async fn shutdown(&mut self) {
        let _ = match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        };
    }
}

async fn write_flush<S: AsyncWrite + AsyncRead + Unpin>(
    s: &mut S,
    buf: &[u8],
) -> std::io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await
}

/// Why a connect is refused before it starts.
pub(super) fn check(host: &Host, port: u16) -> Result<(), String> {
    if port == 25 {
        return Err("Connections to port 25 are prohibited".to_string());
    }
    if port == 0 {
        return Err("The port must be between 1 and 65535".to_string());
    }
    let owner = host.owner.get();
    let open = host
        .tcp
        .borrow()
        .values()
        .filter(|h| h.owner == owner)
        .count();
    if open >= MAX_OPEN_PER_REQUEST {
        return Err(format!(
            "Too many open sockets: a request may have {MAX_OPEN_PER_REQUEST} open at once"
        ));
    }
    let limits = &host.config.limits;
    if let Some(slot) = host.slots.borrow_mut().get_mut(&owner) {
        slot.subrequests += 1;
        if slot.subrequests > limits.max_subrequests {
            return Err(format!(
                "Too many subrequests. (limits.max_subrequests = {})",
                limits.max_subrequests
            ));
        }
    }
    Ok(())
}

/// Starts socket `id` to `hostname:port` for the current request.
pub(super) fn start(host: &Host, id: u64, hostname: String, port: u16, tls: bool) {
    let owner = host.owner.get();
    let (cmds, rx) = mpsc::channel(4);
    let credits = Arc::new(Semaphore::new(0));
    let ticket = Ticket {
        id,
        owner,
        events: host.events.clone(),
        credits: credits.clone(),
        tls: host.tls_config().map(TlsConnector::from),
        timeout: Duration::from_millis(host.config.limits.subrequest_timeout_ms),
    };
    let task = tokio::spawn(run(ticket, hostname, port, tls, rx));
    host.tcp.borrow_mut().insert(
        id,
        TcpHandle {
            cmds,
            credits,
            task: task.abort_handle(),
            owner,
        },
    );
}

struct Ticket {
    id: u64,
    owner: u64,
    events: mpsc::UnboundedSender<HostEvent>,
    credits: Arc<Semaphore>,
    tls: Option<TlsConnector>,
    timeout: Duration,
}

impl Ticket {
    fn send(&self, event: TcpEvent) -> bool {
        self.events
            .send(HostEvent::Tcp {
                id: self.id,
                owner: self.owner,
                event,
            })
            .is_ok()
    }
}

async fn handshake(
    t: &Ticket,
    tcp: TcpStream,
    hostname: &str,
) -> Result<Box<TlsStream<TcpStream>>, String> {
    let name = rustls::pki_types::ServerName::try_from(hostname.to_string())
        .map_err(|e| format!("invalid TLS server name {hostname}: {e}"))?;
    let Some(connector) = &t.tls else {
        return Err("TLS is not available: the trusted roots could not be loaded".into());
    };
    match tokio::time::timeout(t.timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(format!("TLS handshake with {hostname} failed: {e}")),
        Err(_) => Err(format!("TLS handshake with {hostname} timed out")),
    }
}

async fn open(t: &Ticket, hostname: &str, port: u16, tls: bool) -> Result<Stream, String> {
    let tcp = match tokio::time::timeout(t.timeout, TcpStream::connect((hostname, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect to {hostname}:{port} failed: {e}")),
        Err(_) => return Err(format!("connect to {hostname}:{port} timed out")),
    };
    let _ = tcp.set_nodelay(true);
    let addr =
        |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    let (remote, local) = (addr(tcp.peer_addr()), addr(tcp.local_addr()));
    let stream = if tls {
        Stream::Tls(handshake(t, tcp, hostname).await?)
    } else {
        Stream::Plain(tcp)
    };
    t.send(TcpEvent::Opened { remote, local });
    Ok(stream)
}

/// Carries out one command; `Ok(false)` when the socket is done.
async fn command(
    t: &Ticket,
    stream: &mut Option<Stream>,
    cmd: Option<TcpCmd>,
    write_done: &mut bool,
) -> Result<bool, String> {
    match cmd {
        Some(TcpCmd::ShutdownWrite) => {
            if let Some(s) = stream.as_mut() {
                s.shutdown().await;
            }
            *write_done = true;
            Ok(true)
        }
        Some(TcpCmd::Write(bytes)) => {
            if let Some(s) = stream.as_mut() {
                s.write_all(&bytes).await.map_err(|e| e.to_string())?;
            }
            Ok(t.send(TcpEvent::Written))
        }
        Some(TcpCmd::StartTls(name)) => {
            match stream.take() {
                Some(Stream::Plain(tcp)) => {
                    *stream = Some(Stream::Tls(handshake(t, tcp, &name).await?));
                    Ok(t.send(TcpEvent::TlsUpgraded))
                }
                other => {
                    *stream = other;
                    Err("startTls() needs a plain connection opened with secureTransport \"starttls\"".into())
                }
            }
        }
        Some(TcpCmd::Close) | None => {
            if let Some(s) = stream.as_mut() {
                s.shutdown().await;
            }
            Ok(false)
        }
    }
}

async fn run(t: Ticket, hostname: String, port: u16, tls: bool, mut cmds: mpsc::Receiver<TcpCmd>) {
    let mut stream = match open(&t, &hostname, port, tls).await {
        Ok(s) => Some(s),
        Err(e) => {
            t.send(TcpEvent::Closed(Some(e)));
            return;
        }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut ahead, mut read_done, mut write_done) = (0usize, false, false);
    let error = loop {
        if read_done && write_done {
            break None;
        }
        let step = if ahead >= FETCH_READ_AHEAD_BYTES || read_done {
            tokio::select! {
                permit = t.credits.acquire(), if !read_done => {
                    match permit {
                        Ok(p) => p.forget(),
                        Err(_) => break None,
                    }
                    ahead = 0;
                    Ok(true)
                }
                cmd = cmds.recv() => command(&t, &mut stream, cmd, &mut write_done).await,
            }
        } else {
            let Some(s) = stream.as_mut() else { break None };
            tokio::select! {
                n = s.read(&mut buf) => match n {
                    Ok(0) => {
                        read_done = true;
                        Ok(t.send(TcpEvent::ReadEnd))
                    }
                    Ok(n) => {
                        ahead += n;
                        Ok(t.send(TcpEvent::Data(Bytes::copy_from_slice(&buf[..n]))))
                    }
                    Err(e) => Err(e.to_string()),
                },
                cmd = cmds.recv() => command(&t, &mut stream, cmd, &mut write_done).await,
            }
        };
        match step {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(e),
        }
    };
    t.send(TcpEvent::Closed(error));
}

impl Host {
    /// The TLS client settings, built on first use (`None` if the roots
    /// cannot be used; the isolate's fetch client was built from the same
    /// list, so that does not happen in practice).
    fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls
            .get_or_init(|| {
                crate::fetch::tls_config(&self.config.extra_root_certs)
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    }

    /// Closes the sockets request `rid` opened: they end with it.
    pub(super) fn close_sockets_of(&self, rid: u64) {
        self.tcp.borrow_mut().retain(|_, h| {
            if h.owner == rid {
                h.task.abort();
                false
            } else {
                true
            }
        });
    }
}
