//! The `camgate` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.

mod demo;
pub mod env_mode;
mod events;
mod load;
mod zones;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use load::{ConfigOrigin, DEFAULT_CONFIG, describe, load};

/// camgate: one gateway for the events of every camera.
#[derive(Debug, Parser)]
#[command(name = "camgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the daemon).
    Run {
        /// Configuration file; without it `camgate.toml` is used when present, else defaults.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and print what would run.
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Run the gateway against built-in simulated devices, on loopback only.
    Demo(demo::DemoArgs),
    /// Run one simulated device against any camgate.
    Sim {
        #[command(subcommand)]
        vendor: SimVendor,
    },
    /// Query the store, or follow it as events arrive.
    Events(events::EventsArgs),
    /// Print the occupancy of each zone.
    Zones(zones::ZonesArgs),
}

/// How the simulated Dahua camera asks for credentials.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SimDahuaAuth {
    /// Digest MD5 with qop=auth (most cameras).
    Digest,
    /// Digest MD5 without qop (RFC 2069, old firmware).
    DigestNoQop,
    /// Digest SHA-256.
    Sha256,
    /// HTTP Basic only (2014/2015 firmware).
    Basic,
    /// No authentication.
    None,
}

#[derive(Debug, Subcommand)]
pub enum SimVendor {
    /// A Dahua camera or NVR serving `eventManager.cgi?action=attach` event streams, for
    /// any client to connect to.
    Dahua {
        /// Where to listen, e.g. 127.0.0.1:8081.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        #[arg(long, default_value = "admin")]
        username: String,
        #[arg(long, env = "CAMGATE_SIM_PASSWORD", hide_env_values = true, default_value = "admin")]
        password: String,
        #[arg(long, value_enum, default_value = "digest")]
        auth: SimDahuaAuth,
        /// Channels (an NVR has several); events are spread over them.
        #[arg(long, default_value_t = 1)]
        channels: u32,
        /// Seconds between events on each stream.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Connections open at once beyond which a new one is refused with a bare 401
        /// ("Exceeded maximum number of connections"), as a real device does.
        #[arg(long, default_value_t = 10_000)]
        max_connections: usize,
        /// Put the send time into every event's data as "SimSentMs" (Unix milliseconds), a
        /// simulator-only field for measuring the latency from device to output.
        #[arg(long)]
        stamp: bool,
    },
    /// An Avigilon ACC Web Endpoint (REST API under /mt/api/rest/v1) serving a counting
    /// scenario's analytic events, for `[[avigilon]]` sources to poll.
    Avigilon {
        /// Where to listen, e.g. 127.0.0.1:8443.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// HTTPS with a fresh self-signed certificate (printed, for `ca_bundle`).
        #[arg(long)]
        tls: bool,
        /// Scenario JSON (servers, cameras, rules, timeline; see camgate_sim::avigilon).
        /// Default: a live counting scenario of 100 entries and 90 exits over a minute.
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[arg(long, default_value = camgate_sim::avigilon::DEFAULT_USER)]
        username: String,
        #[arg(long, env = "CAMGATE_SIM_PASSWORD", hide_env_values = true, default_value = camgate_sim::avigilon::DEFAULT_PASSWORD)]
        password: String,
        /// The integration's user nonce the server accepts.
        #[arg(long, default_value = camgate_sim::avigilon::DEFAULT_NONCE)]
        nonce: String,
        /// The integration's user key (64 hex characters).
        #[arg(long, env = "CAMGATE_SIM_USER_KEY", hide_env_values = true, default_value = camgate_sim::avigilon::DEFAULT_USER_KEY)]
        user_key: String,
        /// Sleep this many milliseconds before each answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Share of requests (0..1) answered with 500/503/504.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
    },
    /// A Viewtron IP camera (or, with --nvr, an NVR) posting XML events, keepalives,
    /// alarm status and traject bursts with real-size images.
    Viewtron {
        /// Base URL of the webhook listener, e.g. http://127.0.0.1:5050
        #[arg(long)]
        target: String,
        /// Posts per second.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// Stop after this many posts (default: until interrupted).
        #[arg(long)]
        count: Option<u64>,
        /// Act as an NVR: absolute-form targets, `Connection: close`, XML keepalives.
        #[arg(long)]
        nvr: bool,
        /// HTTP Basic credentials to send, as USER:PASSWORD.
        #[arg(long, env = "CAMGATE_SIM_CREDENTIALS", hide_env_values = true)]
        credentials: Option<String>,
        /// Share of posts (0..1) that carry a fault: malformed XML, a truncated body, an
        /// oversized body or a duplicate.
        #[arg(long, default_value_t = 0.0)]
        faults: f64,
        /// Seed for a repeatable stream.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// A script posting a mix of events in camgate's own JSON to `/api/ingest`.
    Generic {
        /// Base URL of the webhook listener, e.g. http://127.0.0.1:5050
        #[arg(long)]
        target: String,
        /// Events per second.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// Stop after this many events (default: until interrupted).
        #[arg(long)]
        count: Option<u64>,
        /// Shared ingest token, when the gateway requires one.
        #[arg(long, env = "CAMGATE_INGEST_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::sources::dahua::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Check { config } => check(config),
        Command::Run { config } => run(config),
        Command::Demo(args) => demo::demo(args),
        Command::Sim { vendor } => sim(vendor),
        Command::Events(args) => events::events(args),
        Command::Zones(args) => zones::zones(args),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // Blocking threads (file writes of images, stdin) are bounded: each costs memory.
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("camgate").max_blocking_threads(64).build()
}

/// For commands that read an existing store (`events`, `zones`): a runtime, once the
/// database is known to exist; otherwise the error is printed and the exit code returned.
fn store_runtime(config: &camgate_core::config::Config) -> Result<tokio::runtime::Runtime, ExitCode> {
    let db = config.database_path();
    if !db.exists() {
        eprintln!("error: no store at {}; start camgate first or pass -c with the right [store] url", db.display());
        return Err(ExitCode::from(1));
    }
    runtime().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}

/// Open the store of `config` for a command; an error is printed and becomes exit code 1.
async fn open_store(
    config: &camgate_core::config::Config,
) -> Result<(crate::store::Store, crate::store::Writer), ExitCode> {
    let options = crate::store::StoreOptions::from_config(config);
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    crate::store::Store::open(options, metrics, crate::bus::Bus::default()).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}

/// Raise the open-file limit to the hard limit: every device connection is a descriptor.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}

fn check(config: Option<PathBuf>) -> ExitCode {
    match load(config.as_deref()) {
        Ok((c, origin)) => {
            print!("{}", describe(&c, &origin));
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Wait for SIGINT or SIGTERM; after the first, a second one exits at once.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; stopping (a second signal exits at once)"),
            _ = int.recv() => tracing::info!("SIGINT received; stopping (a second signal exits at once)"),
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            eprintln!("second signal: exiting at once");
            std::process::exit(130);
        });
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        });
    }
}

fn run(config: Option<PathBuf>) -> ExitCode {
    let (config, origin) = match load(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let _guard = match crate::logging::init(&config.log) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    raise_fd_limit();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        match &origin {
            ConfigOrigin::File(p) => tracing::info!(config = %p.display(), "configuration loaded"),
            ConfigOrigin::Defaults => tracing::info!(
                "no configuration file ({DEFAULT_CONFIG} not found); using the defaults: {}",
                load::summary(&config)
            ),
            ConfigOrigin::Environment(env) => {
                tracing::info!(
                    variables = %env.sources(),
                    "no configuration file ({DEFAULT_CONFIG} not found); configured from environment variables \
                     (the original Dahua listener's settings{}): {}",
                    if env.dotenv { ", with ./.env" } else { "" },
                    load::summary(&config)
                );
                for note in &env.notes {
                    tracing::warn!("{note}");
                }
            }
        }
        let gw = match crate::app::Gateway::start(&config).await {
            Ok(gw) => gw,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(
            webhook = gw.webhook_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            http = gw.http_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            head_seq = gw.store().head(),
            "camgate {} running",
            env!("CARGO_PKG_VERSION")
        );
        wait_for_signal().await;
        gw.shutdown().await;
        ExitCode::SUCCESS
    });
    // Do not wait for blocking tasks (stdin readers and the like) beyond the deadline.
    rt.shutdown_timeout(Duration::from_millis(500));
    code
}

fn sim(vendor: SimVendor) -> ExitCode {
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).try_init();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let stop = tokio_util::sync::CancellationToken::new();
    rt.block_on(async move {
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
        match vendor {
            SimVendor::Generic { target, rate, count, token } => {
                if !(rate > 0.0 && rate.is_finite()) {
                    eprintln!("error: --rate must be a positive number of events per second");
                    return ExitCode::from(2);
                }
                let generator = camgate_sim::generic::Generator::new(&target, rate).with_count(count).with_token(token);
                match generator.run(stop).await {
                    Ok(stats) => {
                        eprintln!("{stats}");
                        if stats.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            SimVendor::Viewtron { target, rate, count, nvr, credentials, faults, seed } => {
                sim_viewtron(&target, rate, count, nvr, credentials, faults, seed, stop).await
            }
            SimVendor::Avigilon {
                listen,
                tls,
                scenario,
                username,
                password,
                nonce,
                user_key,
                latency_ms,
                error_rate,
            } => {
                let opts =
                    SimAvigilonOptions { tls, scenario, username, password, nonce, user_key, latency_ms, error_rate };
                sim_avigilon(&listen, opts, stop).await
            }
            SimVendor::Dahua { listen, username, password, auth, channels, interval, max_connections, stamp } => {
                let opts = SimDahuaOptions { channels, interval, max_connections, stamp };
                sim_dahua(&listen, username, password, auth, opts, stop).await
            }
        }
    })
}

/// The stream settings of `camgate sim dahua`.
struct SimDahuaOptions {
    channels: u32,
    interval: f64,
    max_connections: usize,
    stamp: bool,
}

async fn sim_dahua(
    listen: &str,
    username: String,
    password: String,
    auth: SimDahuaAuth,
    opts: SimDahuaOptions,
    stop: tokio_util::sync::CancellationToken,
) -> ExitCode {
    use camgate_sim::dahua::{AuthMode, DahuaServer, DigestAlgorithm};
    let SimDahuaOptions { channels, interval, max_connections, stamp } = opts;
    if !(interval > 0.0 && interval.is_finite()) || channels == 0 {
        eprintln!("error: --interval must be a positive number of seconds and --channels at least 1");
        return ExitCode::from(2);
    }
    let digest = |qop, algorithm| AuthMode::Digest { qop, algorithm, nonce_per_request: false, stale_after: None };
    let mode = match auth {
        SimDahuaAuth::Digest => digest(true, DigestAlgorithm::Md5),
        SimDahuaAuth::DigestNoQop => digest(false, DigestAlgorithm::Md5),
        SimDahuaAuth::Sha256 => digest(true, DigestAlgorithm::Sha256),
        SimDahuaAuth::Basic => AuthMode::Basic,
        SimDahuaAuth::None => AuthMode::None,
    };
    let server = match DahuaServer::builder()
        .credentials(username.clone(), password)
        .auth(mode)
        .channels(channels)
        .event_interval(Some(Duration::from_secs_f64(interval)))
        .max_connections(max_connections)
        .stamp(stamp)
        .bind(listen)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "simulated Dahua camera on http://{}/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=5 \
         (user {username}, {auth:?} auth, {channels} channel(s), up to {max_connections} connections{}); Ctrl-C stops it",
        server.local_addr(),
        if stamp { ", send time in SimSentMs" } else { "" }
    );
    stop.cancelled().await;
    let stats = server.stats();
    server.shutdown().await;
    eprintln!("served {} stream(s), {} event(s)", camgate_sim::dahua::Stats::get(&stats.streams), stats.events().len());
    ExitCode::SUCCESS
}

/// The settings of `camgate sim avigilon`.
struct SimAvigilonOptions {
    tls: bool,
    scenario: Option<PathBuf>,
    username: String,
    password: String,
    nonce: String,
    user_key: String,
    latency_ms: u64,
    error_rate: f64,
}

async fn sim_avigilon(listen: &str, o: SimAvigilonOptions, stop: tokio_util::sync::CancellationToken) -> ExitCode {
    use camgate_sim::avigilon::{AcsServer, Scenario, Stats};
    if !(0.0..=1.0).contains(&o.error_rate) {
        eprintln!("error: --error-rate must be between 0 and 1");
        return ExitCode::from(2);
    }
    let mut builder = AcsServer::builder()
        .credentials(o.username.clone(), o.password)
        .nonce_key(o.nonce.clone(), o.user_key)
        .tls(o.tls)
        .latency(Duration::from_millis(o.latency_ms))
        .error_rate(o.error_rate);
    if let Some(path) = &o.scenario {
        match Scenario::from_file(path) {
            Ok(s) => builder = builder.scenario(s),
            Err(e) => {
                eprintln!("error: scenario {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let server = match builder.bind(listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let truth = server.truth();
    eprintln!(
        "simulated Avigilon Web Endpoint on {} (user {}, nonce {}; {} server(s), {} camera(s), {} STOP event(s) over the scenario); Ctrl-C stops it",
        server.base_url(),
        o.username,
        o.nonce,
        server.server_ids().len(),
        server.scenario().cameras.len(),
        truth.stops,
    );
    if let Some(pem) = server.cert_pem() {
        eprintln!("its certificate (save it and point ca_bundle at it to verify TLS):\n{pem}");
    }
    stop.cancelled().await;
    let stats = server.stats();
    server.shutdown().await;
    eprintln!(
        "served {} request(s): {} login(s), {} search(es), {} event(s)",
        Stats::get(&stats.requests),
        Stats::get(&stats.logins),
        Stats::get(&stats.searches) + Stats::get(&stats.continues),
        Stats::get(&stats.events_served),
    );
    ExitCode::SUCCESS
}

/// The `host:port` of an `http://host:port[/...]` URL.
async fn resolve(url: &str) -> Result<std::net::SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("invalid target {url:?}: give the webhook listener as http://HOST:PORT"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    tokio::net::lookup_host(hostport)
        .await
        .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport} has no address"))
}

#[allow(clippy::too_many_arguments)]
async fn sim_viewtron(
    target: &str,
    rate: f64,
    count: Option<u64>,
    nvr: bool,
    credentials: Option<String>,
    faults: f64,
    seed: Option<u64>,
    stop: tokio_util::sync::CancellationToken,
) -> ExitCode {
    use camgate_sim::viewtron::{Camera, Fault, Nvr, Until};
    if !(rate > 0.0 && rate.is_finite() && (0.0..=1.0).contains(&faults)) {
        eprintln!("error: --rate must be positive and --faults between 0 and 1");
        return ExitCode::from(2);
    }
    let addr = match resolve(target).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let credentials = match credentials.as_deref().map(|c| c.split_once(':')) {
        None => None,
        Some(Some((u, p))) => Some((u.to_owned(), p.to_owned())),
        Some(None) => {
            eprintln!("error: --credentials must be USER:PASSWORD");
            return ExitCode::from(2);
        }
    };
    let until = count.map_or(Until::Stopped, Until::Posts);
    let kinds = vec![Fault::Malformed, Fault::Truncated, Fault::Oversized, Fault::Duplicate];
    let seed = seed.unwrap_or_else(|| jiff::Timestamp::now().as_millisecond() as u64);
    macro_rules! run {
        ($device:expr) => {{
            let mut d = $device.seed(seed).faults(faults, kinds);
            if let Some((u, p)) = &credentials {
                d = d.credentials(u, p);
            }
            d.run(rate, until, stop).await
        }};
    }
    let report = if nvr { run!(Nvr::new(addr)) } else { run!(Camera::new(addr)) };
    match report {
        Ok(r) => {
            eprintln!("{r}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
