//! The gateway: wires sources, the store, sinks and the HTTP API together, and stops them
//! in the order that loses nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::Vendor;
use camgate_core::config::{CameraConfig, Config, DahuaCamera, TrajectMode, ViewtronCamera};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::sinks::{self, SinkRunner, SinkStatus};
use crate::sources::{self, Registry, SourceState, viewtron};
use crate::store::{Store, StoreError, StoreOptions, Writer};
use crate::web::{self, ServerLimits};

/// Time listeners get at shutdown to finish the requests in flight.
const REQUEST_GRACE: Duration = Duration::from_millis(2000);
/// Time sinks get at shutdown to deliver what is committed.
const SINK_GRACE: Duration = Duration::from_millis(2000);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Listen(std::io::Error),
    #[error("sink `{name}`: {message}")]
    Sink { name: String, message: String },
    #[error("camera `{name}`: {message}")]
    Camera { name: String, message: String },
    #[error("avigilon `{name}`: {message}")]
    Avigilon { name: String, message: String },
}

/// A running gateway.
pub struct Gateway {
    store: Store,
    writer: Option<Writer>,
    bus: Bus,
    sources: Registry,
    metrics: Arc<Metrics>,
    http_addr: Option<SocketAddr>,
    webhook_addr: Option<SocketAddr>,
    stop_sources: CancellationToken,
    stop_sinks: CancellationToken,
    listeners: Vec<JoinHandle<()>>,
    /// Tasks that end when the sources stop (device watchdogs).
    background: Vec<JoinHandle<()>>,
    sinks: Vec<(String, JoinHandle<()>)>,
}

impl Gateway {
    /// Open the store, start the sinks, bind the listeners.
    pub async fn start(config: &Config) -> Result<Gateway, StartError> {
        let metrics = Arc::new(Metrics::new());
        let bus = Bus::default();
        let (store, writer) = Store::open(StoreOptions::from_config(config), metrics.clone(), bus.clone()).await?;
        let sources = Registry::default();
        let stop_sources = CancellationToken::new();
        let stop_sinks = CancellationToken::new();

        let mut sink_tasks = Vec::new();
        let mut statuses: Vec<Arc<Mutex<SinkStatus>>> = Vec::new();
        for sc in config.sinks() {
            let sink = match sinks::build(&sc).await {
                Ok(s) => s,
                Err(e) => {
                    writer.close().await;
                    return Err(StartError::Sink { name: sc.name().to_owned(), message: e.0 });
                }
            };
            let mut runner = SinkRunner::new(sc.name(), sink, store.clone(), sc.delivery().clone(), metrics.clone());
            if config.webhook.traject == TrajectMode::Live {
                runner = runner.with_live(&bus);
            }
            statuses.push(runner.status.clone());
            sink_tasks.push((sc.name().to_owned(), tokio::spawn(runner.run(stop_sinks.clone()))));
        }

        let mut gw = Gateway {
            store: store.clone(),
            writer: Some(writer),
            bus: bus.clone(),
            sources: sources.clone(),
            metrics: metrics.clone(),
            http_addr: None,
            webhook_addr: None,
            stop_sources: stop_sources.clone(),
            stop_sinks,
            listeners: Vec::new(),
            background: Vec::new(),
            sinks: sink_tasks,
        };

        if config.webhook.enabled {
            let health = sources.register("ingest", Vendor::Generic, "push", SourceState::Listening);
            let ingest = sources::ingest::router(sources::ingest::IngestState {
                store: store.clone(),
                metrics: metrics.clone(),
                token: config.ingest_token(),
                health,
                max_body: config.webhook.max_body.as_usize(),
                body_timeout: config.webhook.body_timeout.get(),
            });
            // Every other path is for Viewtron devices, which post wherever they are told.
            let cameras: Vec<ViewtronCamera> = config
                .camera
                .iter()
                .filter_map(|c| match c {
                    CameraConfig::Viewtron(v) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            let handler = viewtron::gateway::StoreHandler::new(
                store.clone(),
                bus.clone(),
                metrics.clone(),
                sources.clone(),
                config.webhook.traject,
                &cameras,
            );
            let handler = Arc::new(handler);
            gw.background
                .push(tokio::spawn(handler.clone().watch(config.webhook.device_timeout.get(), stop_sources.clone())));
            let front = viewtron::Front::new(
                handler,
                viewtron::FrontOptions {
                    max_body: config.webhook.max_body.as_usize(),
                    body_timeout: config.webhook.body_timeout.get(),
                    accept_unknown: config.webhook.accept_unknown,
                    timezone: jiff::tz::TimeZone::get(&config.site.timezone).unwrap_or(jiff::tz::TimeZone::UTC),
                },
                &cameras,
            );
            let router = ingest.merge(Arc::new(front).router());
            let limits = ServerLimits {
                header_timeout: config.webhook.header_timeout.get(),
                max_connections: config.webhook.max_connections,
            };
            match gw
                .listen("webhook", "the webhook listener ([webhook] listen)", config.webhook.listen, router, limits)
                .await
            {
                Ok(addr) => gw.webhook_addr = Some(addr),
                Err(e) => {
                    gw.shutdown().await;
                    return Err(e);
                }
            }
        }

        let dahua: Vec<DahuaCamera> = config
            .camera
            .iter()
            .filter_map(|c| match c {
                CameraConfig::Dahua(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        if !dahua.is_empty() {
            let ctx = sources::dahua::Context {
                store: store.clone(),
                metrics: metrics.clone(),
                registry: sources.clone(),
                site_timezone: jiff::tz::TimeZone::get(&config.site.timezone).unwrap_or(jiff::tz::TimeZone::UTC),
            };
            match sources::dahua::start(&dahua, &ctx, &stop_sources) {
                Ok(tasks) => gw.background.extend(tasks),
                Err((name, message)) => {
                    gw.shutdown().await;
                    return Err(StartError::Camera { name, message });
                }
            }
        }

        if !config.avigilon.is_empty() {
            // Read once more here: the legacy schedule file may have changed since the check.
            let schedule = match config.schedule() {
                Ok(s) if s.is_empty() => None,
                Ok(s) => Some(Arc::new(s)),
                Err(e) => {
                    gw.shutdown().await;
                    return Err(StartError::Avigilon { name: "[schedule]".into(), message: e.to_string() });
                }
            };
            let ctx = sources::avigilon::Context {
                store: store.clone(),
                metrics: metrics.clone(),
                registry: sources.clone(),
                schedule,
            };
            match sources::avigilon::start(&config.avigilon, &ctx, &stop_sources) {
                Ok(tasks) => gw.background.extend(tasks),
                Err((name, message)) => {
                    gw.shutdown().await;
                    return Err(StartError::Avigilon { name, message });
                }
            }
        }

        if config.http.enabled {
            let router = web::router(web::ApiState {
                store: store.clone(),
                bus: bus.clone(),
                sources: sources.clone(),
                sinks: statuses,
                metrics: metrics.clone(),
                stop: stop_sources.clone(),
            });
            let limits = ServerLimits { header_timeout: Duration::from_secs(30), max_connections: 1024 };
            match gw.listen("http", "the HTTP API ([http] listen)", config.http.listen, router, limits).await {
                Ok(addr) => gw.http_addr = Some(addr),
                Err(e) => {
                    gw.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(gw)
    }

    /// Bind `addr` and serve `router` on it until the sources stop.
    async fn listen(
        &mut self,
        name: &'static str,
        what: &str,
        addr: SocketAddr,
        router: axum::Router,
        limits: ServerLimits,
    ) -> Result<SocketAddr, StartError> {
        let listener = web::bind(what, addr).await.map_err(StartError::Listen)?;
        let local = listener.local_addr().map_err(StartError::Listen)?;
        self.listeners.push(tokio::spawn(web::serve(
            name,
            listener,
            router,
            limits,
            self.metrics.clone(),
            self.stop_sources.clone(),
            REQUEST_GRACE,
        )));
        Ok(local)
    }

    /// Where the HTTP API listens, when enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Where the webhook listener listens, when enabled.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The live bus of committed events (for library callbacks).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn sources(&self) -> &Registry {
        &self.sources
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stop in the order that loses nothing: stop taking input and finish the requests in
    /// flight (each waits for its commit); let every sink deliver what is committed; then
    /// flush the writer (sink cursors) and close the database.
    pub async fn shutdown(mut self) {
        tracing::info!("stopping: no new input; finishing requests in flight");
        self.stop_sources.cancel();
        for l in self.listeners.drain(..).chain(self.background.drain(..)) {
            let _ = l.await;
        }
        tracing::info!(head_seq = self.store.head(), "input stopped; sinks deliver what is stored");
        self.stop_sinks.cancel();
        let deadline = tokio::time::Instant::now() + SINK_GRACE;
        for (name, mut task) in self.sinks.drain(..) {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(sink = %name, "sink did not finish in time; the rest is delivered after the next start");
                task.abort();
            }
        }
        if let Some(w) = self.writer.take() {
            w.close().await;
        }
        tracing::info!("stopped");
    }
}
