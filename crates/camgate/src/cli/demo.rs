//! `camgate demo`: the gateway with simulated devices, on loopback only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use camgate_core::config::{
    CameraConfig, Config, DahuaCamera, DeliveryConfig, Dur, Secret, SinkConfig, ViewtronCamera,
};
use camgate_sim::dahua::{AuthMode, DahuaServer};
use camgate_sim::viewtron::{Camera, Nvr};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How long to run (e.g. "30s", "5m"); default: until Ctrl-C.
    #[arg(long, value_parser = parse_dur)]
    duration: Option<Duration>,
    /// Events per second the simulated devices send.
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// Where the HTTP API listens (loopback).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Where the demo keeps its store, images, logs and events.jsonl.
    #[arg(long, default_value = "data/demo")]
    data_dir: PathBuf,
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    camgate_core::config::parse_duration(s)
}

pub fn demo(args: DemoArgs) -> ExitCode {
    if !args.http.ip().is_loopback() {
        eprintln!("error: the demo only listens on loopback; use --http 127.0.0.1:PORT");
        return ExitCode::from(2);
    }
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        eprintln!("error: --rate must be a positive number of events per second");
        return ExitCode::from(2);
    }
    let mut config = Config::default();
    config.site.data_dir = args.data_dir.clone();
    config.log.file = args.data_dir.join("logs/camgate.log");
    config.http.listen = args.http;
    config.webhook.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.batch_linger = Dur::millis(2);
    // The simulated Viewtron devices connect from addresses of their own on loopback.
    let camera_ip = std::net::IpAddr::from([127, 0, 0, 2]);
    let nvr_ip = std::net::IpAddr::from([127, 0, 0, 3]);
    config.camera = vec![
        CameraConfig::Viewtron(ViewtronCamera {
            name: "gate-lpr".into(),
            address: camera_ip,
            timezone: None,
            channels: Vec::new(),
            username: None,
            password: None,
            password_env: None,
        }),
        CameraConfig::Viewtron(ViewtronCamera {
            name: "nvr".into(),
            address: nvr_ip,
            timezone: None,
            channels: ["front-door", "back-yard", "parking", "lobby"].map(String::from).to_vec(),
            username: None,
            password: None,
            password_env: None,
        }),
    ];
    config.sink = vec![
        SinkConfig::Log { name: None, delivery: DeliveryConfig::default() },
        SinkConfig::Jsonl { name: None, path: args.data_dir.join("events.jsonl"), delivery: DeliveryConfig::default() },
    ];
    let _guard = match crate::logging::init(&config.log) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        // The simulated Dahua NVR listens first: camgate attaches to it like to a real one,
        // with Digest authentication and a password made up for this run.
        let password = format!("demo-{:016x}", rand::random::<u64>());
        let dahua = DahuaServer::builder()
            .credentials("admin", password.clone())
            .auth(AuthMode::digest())
            .channels(4)
            .event_interval(Some(Duration::from_secs_f64(2.0 / args.rate)))
            .bind("127.0.0.1:0")
            .await;
        let dahua = match dahua {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("cannot start the simulated Dahua NVR: {e}");
                return ExitCode::from(1);
            }
        };
        let mut nvr_cam = DahuaCamera::new("dahua-nvr", "127.0.0.1", "admin");
        nvr_cam.port = Some(dahua.local_addr().port());
        nvr_cam.password = Some(Secret::new(password.clone()));
        nvr_cam.heartbeat = Dur::secs(2);
        nvr_cam.channels = ["entrance", "corridor", "loading-bay", "roof"].map(String::from).to_vec();
        config.camera.push(CameraConfig::Dahua(nvr_cam));
        // A simulated Avigilon ACC Web Endpoint with a live occupancy-counting scenario (the
        // legacy monitor's three parking zones, six cameras on two servers), which camgate
        // polls like a real site, and the zones of docs/examples/stadium.toml counting it.
        let acc = match demo_acc(&password).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("cannot start the simulated Avigilon site: {e}");
                return ExitCode::from(1);
            }
        };
        match avigilon_site(&acc, &password) {
            Ok(site) => {
                config.avigilon.extend(site.avigilon);
                config.occupancy = site.occupancy;
                config.zone = site.zone;
            }
            Err(e) => {
                tracing::error!("cannot configure the simulated Avigilon site: {e}");
                return ExitCode::from(1);
            }
        }
        let gw = match crate::app::Gateway::start(&config).await {
            Ok(gw) => gw,
            Err(e) => {
                tracing::error!("cannot start the demo: {e}");
                if matches!(e, crate::app::StartError::Listen(_)) {
                    eprintln!("hint: another program uses {}; try `camgate demo --http 127.0.0.1:0`", args.http);
                }
                return ExitCode::from(1);
            }
        };
        let webhook = gw.webhook_addr().expect("the demo enables the webhook listener");
        let http = gw.http_addr().expect("the demo enables the HTTP API");
        tracing::info!(
            "demo running: simulated devices post to http://{webhook}/api/ingest; API on http://{http} \
             (try /api/events, /api/events/stream, /api/sources, /api/zones, /metrics); data in {}; Ctrl-C stops",
            args.data_dir.display()
        );
        let stop = CancellationToken::new();
        let generator = camgate_sim::generic::Generator::new(&format!("http://{webhook}"), args.rate);
        let sim = tokio::spawn(generator.run(stop.clone()));
        let seed = jiff::Timestamp::now().as_millisecond() as u64;
        let (rate, until) = (args.rate, camgate_sim::viewtron::Until::Stopped);
        let camera = {
            let (stop, mut device) = (stop.clone(), Camera::new(webhook).local_address(camera_ip).seed(seed));
            tokio::spawn(async move { device.run(rate, until, stop).await })
        };
        let nvr = {
            let (stop, mut device) = (stop.clone(), Nvr::new(webhook).local_address(nvr_ip).seed(seed + 1));
            tokio::spawn(async move { device.run(rate / 2.0, until, stop).await })
        };
        tracing::info!(
            "simulated devices: a script posting JSON, a Viewtron LPR camera from {camera_ip}, a \
             Viewtron NVR from {nvr_ip}, a Dahua NVR at http://{} that camgate attaches to, and an \
             Avigilon ACC Web Endpoint at {} that camgate polls every 2 s ({} analytic events over 10 minutes \
             for the zones {})",
            dahua.local_addr(),
            acc.base_url(),
            acc.truth().stops,
            acc.truth().zones.iter().map(|z| format!("{:?}", z.zone)).collect::<Vec<_>>().join(", "),
        );
        match args.duration {
            Some(d) => tokio::select! {
                () = tokio::time::sleep(d) => tracing::info!("demo duration reached; stopping"),
                () = super::wait_for_signal() => {}
            },
            None => super::wait_for_signal().await,
        }
        stop.cancel();
        match sim.await {
            Ok(Ok(stats)) => tracing::info!("script: {stats}"),
            Ok(Err(e)) => tracing::warn!("script stopped: {e}"),
            Err(e) => tracing::warn!("script task failed: {e}"),
        }
        for (what, task) in [("camera", camera), ("NVR", nvr)] {
            match task.await {
                Ok(Ok(report)) => tracing::info!("{what}: {report}"),
                Ok(Err(e)) => tracing::warn!("{what} stopped: {e}"),
                Err(e) => tracing::warn!("{what} task failed: {e}"),
            }
        }
        let dahua_stats = dahua.stats();
        let head = gw.store().head();
        match gw.store().zones(None, None, jiff::Timestamp::now()).await {
            Ok(zones) => {
                let counts: Vec<String> = zones
                    .iter()
                    .map(|z| format!("{} {} ({} in, {} out)", z.zone, z.count, z.entries, z.exits))
                    .collect();
                tracing::info!("zones: {}", counts.join("; "));
            }
            Err(e) => tracing::warn!("cannot read the zone counts: {e}"),
        }
        gw.shutdown().await;
        dahua.shutdown().await;
        let acc_stats = acc.stats();
        acc.shutdown().await;
        tracing::info!(
            "Avigilon site: {} search(es) answered, {} event(s) served",
            camgate_sim::avigilon::Stats::get(&acc_stats.searches)
                + camgate_sim::avigilon::Stats::get(&acc_stats.continues),
            camgate_sim::avigilon::Stats::get(&acc_stats.events_served),
        );
        tracing::info!(
            "Dahua NVR: {} events sent on {} stream(s)",
            dahua_stats.events().len(),
            camgate_sim::dahua::Stats::get(&dahua_stats.streams)
        );
        tracing::info!(events = head, "demo stopped; the events are in {}", args.data_dir.display());
        ExitCode::SUCCESS
    });
    rt.shutdown_timeout(Duration::from_millis(500));
    code
}

/// The demo's ACC emulator: 600 entries and 540 exits from ten seconds ago to ten minutes
/// from now, on the legacy monitor's three parking zones (the rule names of
/// docs/protocols/avigilon.md §6.3), six cameras and two servers, over plain HTTP on
/// loopback.
async fn demo_acc(password: &str) -> std::io::Result<camgate_sim::avigilon::AcsServer> {
    use camgate_sim::avigilon::{AcsServer, CountingSpec, DEFAULT_NONCE, DEFAULT_USER_KEY, Scenario};
    let spec = CountingSpec {
        entries: 600,
        exits: 540,
        zones: 3,
        cameras: 6,
        // Ten seconds are already there when camgate first polls: the zones count at once.
        start_offset_ms: -10_000,
        span_ms: 610_000,
        seed: rand::random(),
        late_fraction: 0.05,
        late_delay_ms: 5_000,
        duplicate_fraction: 0.02,
        duplicate_shift_ms: 3_000,
        subclass: "VEHICLE_CAR".into(),
        // Presence rules ("Presencia Puerta N": rows of the legacy eventos_Analisis table)
        // and a vehicle counting rule no zone counts.
        noise: 120,
        ..CountingSpec::default()
    };
    let mut scenario = Scenario::counting(&spec).map_err(std::io::Error::other)?;
    legacy_rule_names(&mut scenario);
    AcsServer::builder()
        .credentials("camgate-demo", password)
        .nonce_key(DEFAULT_NONCE, DEFAULT_USER_KEY)
        .scenario(scenario)
        .bind("127.0.0.1:0")
        .await
}

/// The simulator's zones and rule names → the legacy site's (docs/protocols/avigilon.md
/// §6.3), which the stadium zones match: (simulator zone, zone, entry rule, exit rule).
const LEGACY_ZONES: [(&str, &str, &str, &str); 3] = [
    ("PARQUEADERO NORTE", "Parqueadero Norte", "AFORO ENTRADA PARQUEADERO NORTE", "AFORO SALIDA PARQUEADERO NORTE"),
    ("CAMPINSITO", "Campinsito", "ENTRADA VEHICULAR CAMPINSITO", "SALIDA VEHICULAR CAMPINSITO"),
    ("PARQUEADERO SUR", "Zona Sur", "INGRESO PARQUEADERO SUR", "SALIDA PARQUEADERO SUR"),
];

/// Rename the counting scenario's rules and zones to the legacy site's. Names that already
/// have the legacy words keep the simulator's mixed case and spacing; the others get extra
/// spaces (zone matchers ignore both).
fn legacy_rule_names(scenario: &mut camgate_sim::avigilon::Scenario) {
    use camgate_sim::avigilon::OBJECT_COUNTING_ENTER;
    for rule in &mut scenario.rules {
        let Some(zone) = &rule.zone else { continue };
        let Some((_, name, entry, exit)) = LEGACY_ZONES.iter().find(|z| z.0 == zone) else { continue };
        let legacy = if rule.activity == OBJECT_COUNTING_ENTER { entry } else { exit };
        if camgate_sim::avigilon::normalize_name(&rule.name) != *legacy {
            rule.name = format!(" {legacy}  ");
        }
        rule.zone = Some((*name).to_owned());
    }
}

/// What the demo adds to its configuration for the emulator: the `[[avigilon]]` site and the
/// three zones of docs/examples/stadium.toml (with `reset = "never"`: the demo has no
/// `[schedule]`), with the legacy tables.
struct AvigilonSite {
    avigilon: Vec<camgate_core::config::AvigilonConfig>,
    occupancy: camgate_core::config::OccupancyConfig,
    zone: Vec<camgate_core::config::ZoneConfig>,
}

/// The demo's site and zones (written as TOML, so they are checked like a user's).
fn avigilon_site(acc: &camgate_sim::avigilon::AcsServer, password: &str) -> Result<AvigilonSite, String> {
    use camgate_sim::avigilon::{DEFAULT_NONCE, DEFAULT_USER_KEY, TOPIC_STOP as STOP};
    let mut text = format!(
        "[[avigilon]]\nname = \"acc-demo\"\nurl = \"{}\"\nusername = \"camgate-demo\"\npassword = \"{password}\"\n\
         user_nonce = \"{DEFAULT_NONCE}\"\nuser_key = \"{DEFAULT_USER_KEY}\"\ndiscover_cameras = true\n\
         poll_interval = \"2s\"\nlookback = \"10s\"\n\n\
         [occupancy]\nlegacy_tables = true\nlegacy_events = [\n\
         {{ name = {{ contains = \"PUERTA\" }}, code = {{ equals = \"{STOP}\" }} }},\n\
         {{ name = {{ contains = \"AFORO ENTRADA SENCIA\" }}, code = {{ equals = \"{STOP}\" }} }},\n\
         {{ name = {{ equals = \"INGRESO PERSONAS ENTRADA MARATON\" }}, code = {{ equals = \"{STOP}\" }} }},\n]\n",
        acc.origin()
    );
    let tables = ["Aforo_parqueadero", "Aforo_parqueadero_campinsito", "Aforo_parqueadero_SUR"];
    for ((_, name, entry, exit), table) in LEGACY_ZONES.iter().zip(tables) {
        // As the legacy monitor, a substring of the name (case and spaces aside); only STOP
        // events count.
        let matcher =
            |rule: &str| format!("[{{ name = {{ contains = \"{rule}\" }}, code = {{ equals = \"{STOP}\" }} }}]");
        text.push_str(&format!(
            "\n[[zone]]\nname = \"{name}\"\nreset = \"never\"\nenter = {}\nexit = {}\nlegacy_table = \"{table}\"\n",
            matcher(entry),
            matcher(exit)
        ));
    }
    let c = Config::from_toml(&text, "<demo>").map_err(|e| e.to_string())?;
    Ok(AvigilonSite { avigilon: c.avigilon, occupancy: c.occupancy, zone: c.zone })
}
