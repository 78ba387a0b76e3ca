//! An embeddable Viewtron webhook server with callbacks, for programs that want the
//! events themselves rather than camgate's store and sinks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use camgate_protocols::viewtron::{Device, ParseError, Parsed};
use futures::future::BoxFuture;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::CancellationToken;

use super::{Front, FrontOptions, Handler, Peer, Unavailable};
use crate::metrics::Metrics;
use crate::web::ServerLimits;

type EventFn = dyn Fn(&Parsed, IpAddr) + Send + Sync;
type PeerFn = dyn Fn(IpAddr) + Send + Sync;
type RawFn = dyn Fn(&str, IpAddr) + Send + Sync;
type UnparsedFn = dyn Fn(&str, IpAddr, &str) + Send + Sync;

#[derive(Default, Clone)]
struct Callbacks {
    on_event: Option<Arc<EventFn>>,
    on_connect: Option<Arc<PeerFn>>,
    on_raw: Option<Arc<RawFn>>,
    on_unparsed: Option<Arc<UnparsedFn>>,
}

/// Run a callback on the blocking pool, so a slow one cannot stall the server's threads;
/// a panic is caught and logged, and the connection and the server go on.
async fn call(what: &'static str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        tracing::error!(callback = what, error = %e, "a Viewtron callback panicked; the server goes on");
    }
}

impl Handler for Callbacks {
    fn connected<'a>(&'a self, peer: &'a Peer, _device: &'a Device) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(f) = self.on_connect.clone() {
                let ip = peer.ip;
                call("on_connect", move || f(ip)).await;
            }
        })
    }

    fn keepalive<'a>(&'a self, _peer: &'a Peer, _device: &'a Device) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn raw<'a>(&'a self, peer: &'a Peer, body: &'a [u8]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(f) = self.on_raw.clone() {
                let (ip, text) = (peer.ip, String::from_utf8_lossy(body).into_owned());
                call("on_raw", move || f(&text, ip)).await;
            }
        })
    }

    fn events<'a>(&'a self, peer: &'a Peer, events: Vec<Parsed>) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            if let Some(f) = self.on_event.clone() {
                let ip = peer.ip;
                call("on_event", move || events.iter().for_each(|e| f(e, ip))).await;
            }
            Ok(())
        })
    }

    fn traject<'a>(&'a self, peer: &'a Peer, update: Parsed) -> BoxFuture<'a, Result<(), Unavailable>> {
        self.events(peer, vec![update])
    }

    fn unparsed<'a>(
        &'a self,
        peer: &'a Peer,
        body: &'a [u8],
        error: ParseError,
    ) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            tracing::warn!(ip = %peer.ip, error = %error, "a Viewtron post could not be parsed");
            if let Some(f) = self.on_unparsed.clone() {
                let (ip, text) = (peer.ip, String::from_utf8_lossy(body).into_owned());
                let reason = error.reason.as_str();
                call("on_unparsed", move || f(&text, ip, reason)).await;
            }
            Ok(())
        })
    }
}

/// Stops a running [`Server`]: requests in flight finish, then `serve` returns.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

/// A Viewtron webhook server: devices POST to it, your callbacks get the events.
///
/// Every post is answered with the success body devices expect, after your callbacks for
/// it have returned. Callbacks run on tokio's blocking pool: they may block, and a
/// panicking callback is logged without taking the connection down.
///
/// Route events by category and save their images:
///
/// ```no_run
/// use camgate::viewtron::Server;
///
/// # async fn run() -> std::io::Result<()> {
/// let server = Server::bind("0.0.0.0:5050")
///     .await?
///     .on_connect(|ip| println!("device {ip} is posting"))
///     .on_event(|event, ip| match event.category {
///         "lpr" => {
///             let plate = event.plate.as_ref().map_or("?", |p| p.number.as_str());
///             println!("{ip}: plate {plate}");
///             for image in &event.images {
///                 let name = format!("{}-{}.jpg", event.key.replace(':', "_"), image.role);
///                 if let Err(e) = std::fs::write(&name, &image.bytes) {
///                     eprintln!("cannot save {name}: {e}");
///                 }
///             }
///         }
///         "face" => println!("{ip}: face {:?}", event.face),
///         "traject" => {} // tracking updates, several a second
///         other => println!("{ip}: {other} {} {:?}", event.code, event.state),
///     })
///     .on_unparsed(|xml, ip, reason| eprintln!("{ip}: {reason}: {} bytes", xml.len()));
/// let stop = server.shutdown_handle();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     stop.shutdown();
/// });
/// server.serve().await
/// # }
/// ```
pub struct Server {
    listener: TcpListener,
    callbacks: Callbacks,
    options: FrontOptions,
    limits: ServerLimits,
    stop: CancellationToken,
}

impl Server {
    /// Listen on `addr` (`"0.0.0.0:5050"`, `"127.0.0.1:0"` for any free port).
    pub async fn bind(addr: impl ToSocketAddrs) -> std::io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
            callbacks: Callbacks::default(),
            options: FrontOptions {
                max_body: 16_000_000,
                body_timeout: Duration::from_secs(30),
                accept_unknown: true,
                timezone: jiff::tz::TimeZone::UTC,
            },
            limits: ServerLimits { header_timeout: Duration::from_secs(30), max_connections: 4096 },
            stop: CancellationToken::new(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Every event (smart events, alarm-status entries, traject updates) and the peer address.
    pub fn on_event(mut self, f: impl Fn(&Parsed, IpAddr) + Send + Sync + 'static) -> Self {
        self.callbacks.on_event = Some(Arc::new(f));
        self
    }

    /// Once per device (peer address) per process, on its first keepalive or event.
    pub fn on_connect(mut self, f: impl Fn(IpAddr) + Send + Sync + 'static) -> Self {
        self.callbacks.on_connect = Some(Arc::new(f));
        self
    }

    /// Every non-empty body except traject posts, as text.
    pub fn on_raw(mut self, f: impl Fn(&str, IpAddr) + Send + Sync + 'static) -> Self {
        self.callbacks.on_raw = Some(Arc::new(f));
        self
    }

    /// Bodies that are not Viewtron posts, with the reason (`parse-error`, `wrong-root`, ...).
    pub fn on_unparsed(mut self, f: impl Fn(&str, IpAddr, &str) + Send + Sync + 'static) -> Self {
        self.callbacks.on_unparsed = Some(Arc::new(f));
        self
    }

    /// Refuse bodies larger than this (413); default 16 MB.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.options.max_body = bytes;
        self
    }

    /// The time zone of device clocks that send local times; default UTC.
    pub fn timezone(mut self, tz: jiff::tz::TimeZone) -> Self {
        self.options.timezone = tz;
        self
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Serve until the shutdown handle is used.
    pub async fn serve(self) -> std::io::Result<()> {
        let front = Arc::new(Front::new(Arc::new(self.callbacks), self.options, &[]));
        crate::web::serve(
            "viewtron",
            self.listener,
            front.router(),
            self.limits,
            Arc::new(Metrics::new()),
            self.stop,
            Duration::from_secs(5),
        )
        .await;
        Ok(())
    }
}
