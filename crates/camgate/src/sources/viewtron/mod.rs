//! Viewtron cameras and NVRs: the XML webhook receiver.
//!
//! Devices POST to any path of the webhook listener (NVRs use absolute-form targets and
//! `Connection: close`; cameras keep connections alive). Each post is answered with the
//! exact 126-byte success body the devices expect, in one write, only after what it
//! carried is durable (the daemon) or handled (the library server). Posts that cannot be
//! parsed are kept as dead letters and still answered with success, so the device keeps
//! its connection.
//!
//! The HTTP handling ([`Front`]) is shared; what happens to the posts is a [`Handler`]:
//! the daemon stores them ([`gateway::StoreHandler`]), the embeddable [`Server`] calls
//! your callbacks.

pub mod gateway;
mod server;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use base64::Engine;
use camgate_core::config::{Secret, ViewtronCamera};
use camgate_protocols::viewtron::{Device, ParseError, ParseOptions, Parsed, Post, SUCCESS_REPLY, parse};
use futures::future::BoxFuture;

pub use server::{Server, ShutdownHandle};

use crate::sources::http::{error, read_body};
use crate::web::PeerAddr;

/// Who posted: the peer address, and the configured camera it belongs to, if any.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    pub camera: Option<Arc<ViewtronCamera>>,
}

impl Peer {
    /// The configured name, or the address for devices no `[[camera]]` names.
    pub fn name(&self) -> String {
        self.camera.as_ref().map_or_else(|| self.ip.to_string(), |c| c.name.clone())
    }
}

/// The store (or the callbacks) could not take what was posted: answer 503, the device
/// retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// What happens to what devices post.
pub trait Handler: Send + Sync + 'static {
    /// The first post (keepalive or event) from this device since the process started.
    fn connected<'a>(&'a self, peer: &'a Peer, device: &'a Device) -> BoxFuture<'a, ()>;
    /// A keepalive (empty body or an XML keepalive).
    fn keepalive<'a>(&'a self, peer: &'a Peer, device: &'a Device) -> BoxFuture<'a, ()>;
    /// Every non-empty body that is not a traject post, before it is handled.
    fn raw<'a>(&'a self, _peer: &'a Peer, _body: &'a [u8]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Smart events or alarm-status entries of one post.
    fn events<'a>(&'a self, peer: &'a Peer, events: Vec<Parsed>) -> BoxFuture<'a, Result<(), Unavailable>>;
    /// One traject (tracking) update.
    fn traject<'a>(&'a self, peer: &'a Peer, update: Parsed) -> BoxFuture<'a, Result<(), Unavailable>>;
    /// A body that is not a Viewtron post.
    fn unparsed<'a>(
        &'a self,
        peer: &'a Peer,
        body: &'a [u8],
        error: ParseError,
    ) -> BoxFuture<'a, Result<(), Unavailable>>;
    /// A request refused before its body was handled (401, 403, 408, 413).
    fn refused<'a>(&'a self, _peer: &'a Peer, _status: StatusCode, _why: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Limits and identity rules of the receiver.
#[derive(Debug, Clone)]
pub struct FrontOptions {
    pub max_body: usize,
    pub body_timeout: Duration,
    pub accept_unknown: bool,
    /// Time zone for devices without their own.
    pub timezone: jiff::tz::TimeZone,
}

/// The HTTP side of the receiver, shared by the daemon and the library server.
pub struct Front {
    handler: Arc<dyn Handler>,
    options: FrontOptions,
    cameras: HashMap<IpAddr, (Arc<ViewtronCamera>, Option<Secret>, jiff::tz::TimeZone)>,
    seen: Mutex<HashSet<IpAddr>>,
}

impl Front {
    pub fn new(handler: Arc<dyn Handler>, options: FrontOptions, cameras: &[ViewtronCamera]) -> Self {
        let cameras = cameras
            .iter()
            .map(|c| {
                let tz = c
                    .timezone
                    .as_deref()
                    .and_then(|z| jiff::tz::TimeZone::get(z).ok())
                    .unwrap_or_else(|| options.timezone.clone());
                (c.address, (Arc::new(c.clone()), c.password(), tz))
            })
            .collect();
        Front { handler, options, cameras, seen: Mutex::new(HashSet::new()) }
    }

    /// Every method on every path (the webhook listener's fallback).
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(receive).with_state(self)
    }

    /// Whether this is the first post from `ip` since the process started.
    fn first_contact(&self, ip: IpAddr) -> bool {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(ip)
    }
}

/// The exact success reply: 200, `application/xml`, 126 bytes. hyper writes the head and
/// this small body in one write, and the listener sets `TCP_NODELAY`.
fn success() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"))], SUCCESS_REPLY).into_response()
}

/// Whether the request carries the camera's Basic credentials (compared in constant time).
fn basic_auth_ok(headers: &HeaderMap, username: &str, password: &Secret) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{username}:{}", password.expose());
    constant_time_eq::constant_time_eq(&decoded, expected.as_bytes())
}

async fn receive(
    State(front): State<Arc<Front>>,
    peer: Option<Extension<PeerAddr>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method == Method::GET || method == Method::HEAD {
        // Unlike the reference server, with a length, so keep-alive clients do not hang.
        return (StatusCode::OK, "camgate webhook listener: devices POST events here\n").into_response();
    }
    if method != Method::POST {
        let mut r = (StatusCode::METHOD_NOT_ALLOWED, "POST events here\n").into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, GET, HEAD"));
        return r;
    }
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(PeerAddr(a))| a.ip().to_canonical());
    let known = front.cameras.get(&ip);
    let peer = Peer { ip, camera: known.map(|(c, _, _)| c.clone()) };
    if known.is_none() && !front.options.accept_unknown {
        front.handler.refused(&peer, StatusCode::FORBIDDEN, "not a configured camera").await;
        return error(
            StatusCode::FORBIDDEN,
            format!("{ip} is not a configured camera; add a [[camera]] with this address or set accept_unknown"),
        );
    }
    if let Some((cam, Some(password), _)) = known
        && let Some(user) = &cam.username
        && !basic_auth_ok(&headers, user, password)
    {
        front.handler.refused(&peer, StatusCode::UNAUTHORIZED, "missing or wrong credentials").await;
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"camgate\""));
        return r;
    }
    let body = match read_body(&headers, body, front.options.max_body, front.options.body_timeout).await {
        Ok(b) => b,
        Err(e) => {
            let (status, _, message) = e.describe(front.options.max_body, front.options.body_timeout);
            front.handler.refused(&peer, status, &message).await;
            return error(status, message);
        }
    };
    let options = ParseOptions {
        timezone: known.map_or_else(|| front.options.timezone.clone(), |(_, _, tz)| tz.clone()),
        ..ParseOptions::default()
    };
    let post = parse(&body, &options);
    let first = front.first_contact(ip);
    let outcome = match post {
        Ok(Post::Keepalive(device)) => {
            if first {
                front.handler.connected(&peer, &device).await;
            }
            if !body.is_empty() {
                front.handler.raw(&peer, &body).await;
            }
            front.handler.keepalive(&peer, &device).await;
            Ok(())
        }
        Ok(Post::Events(events)) => {
            if first {
                let device = events.first().map(|e| e.device.clone()).unwrap_or_default();
                front.handler.connected(&peer, &device).await;
            }
            front.handler.raw(&peer, &body).await;
            front.handler.events(&peer, events).await
        }
        Ok(Post::Traject(update)) => {
            if first {
                front.handler.connected(&peer, &update.device).await;
            }
            front.handler.traject(&peer, update).await
        }
        Err(e) => {
            front.handler.raw(&peer, &body).await;
            front.handler.unparsed(&peer, &body, e).await
        }
    };
    match outcome {
        Ok(()) => success(),
        Err(Unavailable(why)) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {why}"));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}
