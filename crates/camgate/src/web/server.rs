//! The HTTP/1.1 serving loop both listeners use: a connection cap, a header timeout, and
//! graceful shutdown that lets in-flight requests finish.
//!
//! `axum::serve` has neither a connection cap nor a header timeout, so connections are
//! accepted here and handed to hyper directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ListenerLabels, Metrics};

/// Limits of one listener.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time a client has to send a request's headers, counted from the moment the server
    /// waits for them: on a keep-alive connection that includes the idle time between
    /// requests, so it is also the idle limit.
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Serve `router` on `listener` until `stop` is cancelled, then wait up to `grace` for
/// in-flight requests to finish.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let labels = ListenerLabels { listener: name.to_owned() };
    let mut last_refusal_log: Option<Instant> = None;
    let timeouts = Arc::new(LogLimiter::default());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and similar: back off briefly instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.connections_refused.get_or_create(&labels).inc();
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                last_refusal_log = Some(Instant::now());
                tracing::warn!(
                    listener = name,
                    %peer,
                    max_connections = limits.max_connections,
                    "connection limit reached; closing new connections until some end (logged at most every 10 s)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            tower::ServiceExt::oneshot(router.clone(), req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let open = metrics.connections_open.get_or_create(&labels).clone();
        open.inc();
        let timeouts = timeouts.clone();
        let timed_out = metrics.connections_timed_out.get_or_create(&labels).clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    timed_out.inc();
                    // Slow or idle clients: one line per 10 s at most, the metric counts all.
                    if timeouts.should_log() {
                        tracing::warn!(listener = name, %peer, ?header_timeout, "closed a connection that sent no complete request headers in time (slow or idle client; logged at most every 10 s)");
                    }
                } else {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
            open.dec();
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, "requests still running after {grace:?}; closing them");
        }
    }
}

/// Lets one log line through per 10 s, across tasks.
#[derive(Debug, Default)]
struct LogLimiter {
    last: std::sync::Mutex<Option<Instant>>,
}

impl LogLimiter {
    fn should_log(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            true
        } else {
            false
        }
    }
}

/// The peer address of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Bind a listener, with an error that says which address and what to do.
pub async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for {what}: {e}; change the address in the config or stop what uses it"),
        )
    })
}
