//! Dahua cameras and NVRs (and white-labels: Amcrest, Lorex, EmpireTech, IMOU, ...): one
//! long-lived event stream per device, `GET /cgi-bin/eventManager.cgi?action=attach`.
//! Protocol facts: `docs/protocols/dahua.md` of the shared folder (sections cited below).
//!
//! Each configured `[[camera]] vendor = "dahua"` gets one task (a supervisor) that attaches,
//! reads and reattaches forever:
//!
//! * [`attach`]: one request, authenticated by the device's
//!   [`Authenticator`](camgate_protocols::dahua_auth::Authenticator) (§6), then the multipart
//!   stream read through the pure [`Decoder`](camgate_protocols::dahua::Decoder) and stored
//!   part by part as parts complete (§3, §4). A silent connection is dead after the stall
//!   timeout (3 heartbeats by default); the stream is recycled after about an hour (±10 %).
//! * [`Reconnect`]: when to attach again (§7): at once after a long healthy stream or a
//!   recycle, otherwise after a back-off that grows from `backoff_base` to `backoff_max` with
//!   jitter; `auth_lockout` once the credential budget is spent. A `200` that closes at once
//!   or never sends a byte is a failure like any other.
//! * A refused code list (400/500 to a list, §1) is attached again at once with `[All]`, and
//!   the list applied locally.
//! * Every change of connection state is a `device` event (`connected`, `disconnected`,
//!   `stalled`, `auth_failed`, `unreachable`) and shows in `/api/sources`.
//!
//! A task holds a few kilobytes (decoder buffer, auth state, a connection); thousands of
//! devices run on a couple of cores.

mod attach;
mod client;
mod recorder;

use std::sync::Arc;
use std::time::Duration;

use camgate_core::State;
use camgate_core::Vendor;
use camgate_core::backoff::Backoff;
use camgate_core::config::DahuaCamera;
use camgate_protocols::dahua::{CodeFilter, NormaliseOptions};
use camgate_protocols::dahua_auth::{AuthPolicy, Authenticator, Credentials};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::RngExt;
use rand::rngs::StdRng;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use attach::End;
pub use client::install_crypto_provider;

use self::attach::{Attach, Streamed, ended_data};
use self::client::Clients;
use self::recorder::Recorder;
use crate::metrics::{Metrics, ReasonLabels};
use crate::sources::{Registry, SourceState};
use crate::store::Store;

/// A stream that delivered data for this long was healthy: when it ends, attach again at
/// once and start the back-off over (§7).
pub const HEALTHY_STREAM: Duration = Duration::from_secs(60);
/// Failed attaches in a row, never connected in between, before the `unreachable` event.
pub const UNREACHABLE_AFTER: u32 = 5;
/// Spread of the stream lifetime (`recycle` ±10 %), so an NVR's many streams do not all
/// re-attach in the same second (§7).
const RECYCLE_JITTER: f64 = 0.1;

/// What the Dahua sources share.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Registry,
    /// The site's time zone, for cameras that name none.
    pub site_timezone: TimeZone,
}

/// Start one supervisor per camera. Fails (before anything starts) when a camera's TLS
/// settings cannot be used.
pub fn start(
    cameras: &[DahuaCamera],
    ctx: &Context,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, (String, String)> {
    let mut clients = Clients::default();
    let mut sources = Vec::with_capacity(cameras.len());
    for cam in cameras {
        let client = clients.for_camera(cam).map_err(|e| (cam.name.clone(), e))?;
        sources.push(DahuaSource::new(Arc::new(cam.clone()), client, ctx));
    }
    Ok(sources.into_iter().map(|s| tokio::spawn(s.run(stop.clone()))).collect())
}

/// When to attach again after an attach ended (dahua.md §7, camgate's policy).
#[derive(Debug, Clone)]
pub struct Reconnect {
    backoff: Backoff,
}

impl Reconnect {
    pub fn new(base: Duration, max: Duration) -> Self {
        Reconnect { backoff: Backoff::new(base, max) }
    }

    /// Failed attaches since the last healthy stream.
    pub fn failures(&self) -> u32 {
        self.backoff.attempts()
    }

    /// The wait before the next attach. `streamed` is how long the stream lasted and whether
    /// it delivered any byte, when the device answered `200`.
    pub fn after(&mut self, end: &End, streamed: Option<(Duration, bool)>, rng: &mut StdRng) -> Duration {
        match end {
            End::Stopped => Duration::ZERO,
            End::Recycled => {
                self.backoff.reset();
                Duration::ZERO
            }
            End::CodesRefused(_) => Duration::ZERO,
            End::AuthFailed { lockout: Some(d), .. } => {
                self.backoff.next_delay(rng);
                *d
            }
            _ if streamed.is_some_and(|(lived, data)| data && lived >= HEALTHY_STREAM) => {
                self.backoff.reset();
                Duration::ZERO
            }
            _ => self.backoff.next_delay(rng),
        }
    }
}

/// One device's supervisor.
struct DahuaSource {
    camera: Arc<DahuaCamera>,
    client: reqwest::Client,
    recorder: Recorder,
    base: String,
    normalise: NormaliseOptions,
}

impl DahuaSource {
    fn new(camera: Arc<DahuaCamera>, client: reqwest::Client, ctx: &Context) -> Self {
        let health = ctx.registry.register(&camera.name, Vendor::Dahua, "pull", SourceState::Connecting);
        let host = if camera.host.contains(':') && !camera.host.starts_with('[') {
            format!("[{}]", camera.host)
        } else {
            camera.host.clone()
        };
        let scheme = if camera.https { "https" } else { "http" };
        let base = format!("{scheme}://{host}:{}", camera.port());
        let timezone = camera
            .timezone
            .as_deref()
            .and_then(|tz| TimeZone::get(tz).ok())
            .unwrap_or_else(|| ctx.site_timezone.clone());
        let normalise = NormaliseOptions {
            timezone,
            codes: CodeFilter::new(&camera.codes),
            keep_video_motion_info: camera.video_motion_info,
        };
        let recorder =
            Recorder { camera: camera.clone(), store: ctx.store.clone(), metrics: ctx.metrics.clone(), health };
        DahuaSource { camera, client, recorder, base, normalise }
    }

    fn target(&self, all: bool) -> String {
        let codes = if all { "[All]".to_owned() } else { self.camera.codes_param() };
        format!(
            "/cgi-bin/eventManager.cgi?action=attach&codes={codes}&heartbeat={}",
            self.camera.heartbeat.get().as_secs()
        )
    }

    async fn run(self, stop: CancellationToken) {
        let cam = self.camera.clone();
        let health = self.recorder.health.clone();
        let policy = AuthPolicy { max_failures: cam.auth_failures, lockout: cam.auth_lockout.get() };
        let mut auth = Authenticator::new(Credentials::new(cam.username.clone(), cam.password()), policy);
        let mut rng = rand::make_rng::<StdRng>();
        let mut reconnect = Reconnect::new(cam.backoff_base.get(), cam.backoff_max.get());
        let mut attach_all = cam.all_codes();
        let mut connected = false;
        let mut unreachable_told = false;
        // Attaches in a row that got no `200` (the back-off's count goes on across short
        // streams; this one restarts at every connect, as UNREACHABLE_AFTER says).
        let mut failed_attaches = 0u32;
        let mut last_logged: Option<String> = None;
        let mut first = true;
        tracing::info!(device = %cam.name, url = %self.base, codes = %cam.codes_param(), heartbeat = cam.heartbeat.get().as_secs(), "Dahua event stream: attaching");
        loop {
            if !first {
                health.update(|h| h.reconnects += 1);
            }
            first = false;
            if !connected {
                health.set_state(SourceState::Connecting);
            }
            let lifetime = cam.recycle.get().mul_f64(1.0 + rng.random_range(-RECYCLE_JITTER..=RECYCLE_JITTER));
            let mut attach = Attach {
                client: &self.client,
                base: &self.base,
                target: self.target(attach_all),
                auth: &mut auth,
                rng: &mut rng,
                recorder: &self.recorder,
                normalise: self.normalise.clone(),
                stall: cam.stall_timeout(),
                response_timeout: cam.connect_timeout.get() + cam.stall_timeout(),
                recycle_at: Instant::now() + lifetime,
                stop: &stop,
            };
            let (end, streamed) = match attach.request().await {
                Ok(mut response) => {
                    failed_attaches = 0;
                    let since = Instant::now();
                    match attach.first_chunk(&mut response).await {
                        Err(end) => (end, Some(Streamed { since, bytes: 0, events: 0 })),
                        Ok(first) => {
                            if connected {
                                tracing::debug!(device = %cam.name, "Dahua event stream re-attached");
                            } else {
                                connected = true;
                                unreachable_told = false;
                                last_logged = None;
                                let now = Timestamp::now();
                                // `last_error` stays: it says why the last stream ended or could
                                // not start (docs/events.md), which matters most right after a
                                // reconnect.
                                health.update(|h| {
                                    h.state = SourceState::Connected;
                                    h.connected_since = Some(now);
                                });
                                tracing::info!(device = %cam.name, url = %self.base, codes = %attach.target, "Dahua event stream connected");
                                let data = serde_json::json!({ "url": self.base, "request": attach.target, "scheme": attach.auth.scheme().map(|s| format!("{s:?}")) });
                                self.recorder.device_event("connected", State::Start, data).await;
                            }
                            let mut s = Streamed { since, bytes: 0, events: 0 };
                            let end = attach.stream(response, first, &mut s).await;
                            (end, Some(s))
                        }
                    }
                }
                Err(end) => (end, None),
            };
            if end == End::Stopped {
                break;
            }
            let delay = reconnect.after(&end, streamed.as_ref().map(|s| (s.since.elapsed(), s.bytes > 0)), &mut rng);
            if let End::CodesRefused(status) = end {
                tracing::warn!(device = %cam.name, status, codes = %cam.codes_param(), "the device refused the code list; attaching with [All] and filtering here (dahua.md §1)");
                attach_all = true;
                continue;
            }
            if end != End::Recycled {
                self.report_end(&end, streamed.as_ref(), &mut connected, delay, &mut last_logged).await;
                if streamed.is_none() {
                    failed_attaches += 1;
                }
                if !connected && failed_attaches >= UNREACHABLE_AFTER && !unreachable_told {
                    unreachable_told = true;
                    let data = serde_json::json!({ "failures": failed_attaches, "last_error": end.describe() });
                    self.recorder.device_event("unreachable", State::Pulse, data).await;
                }
            }
            if !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
        if connected {
            let data = serde_json::json!({ "reason": End::Stopped.describe() });
            self.recorder.device_event("disconnected", State::Stop, data).await;
        }
        health.update(|h| {
            h.state = SourceState::Stopped;
            h.connected_since = None;
        });
    }

    /// Log, count and announce an attach that ended (not a recycle, not a stop).
    async fn report_end(
        &self,
        end: &End,
        streamed: Option<&Streamed>,
        connected: &mut bool,
        delay: Duration,
        last_logged: &mut Option<String>,
    ) {
        let cam = &self.camera;
        let health = &self.recorder.health;
        let why = end.describe();
        let retry_in = camgate_core::config::Dur(Duration::from_millis(delay.as_millis() as u64)).to_string();
        health.update(|h| {
            h.last_error = Some(why.clone());
            if matches!(end, End::AuthFailed { .. }) {
                h.auth_failures += 1;
            }
        });
        self.recorder.metrics.dahua_stream_ends.get_or_create(&ReasonLabels { reason: end_kind(end).into() }).inc();
        if *connected {
            *connected = false;
            health.update(|h| {
                h.state = SourceState::Disconnected;
                h.connected_since = None;
            });
            tracing::warn!(device = %cam.name, reason = %why, retry_in = %retry_in, "Dahua event stream lost");
            let mut data = ended_data(end, streamed);
            data["retry_in_seconds"] = serde_json::json!(delay.as_secs_f64());
            self.recorder.device_event(end.device_code(), State::Stop, data).await;
        } else if last_logged.as_deref() != Some(why.as_str()) {
            tracing::warn!(device = %cam.name, url = %self.base, reason = %why, retry_in = %retry_in, "Dahua event stream: attach failed (repeats of this error are logged at debug level)");
            *last_logged = Some(why.clone());
        } else {
            tracing::debug!(device = %cam.name, reason = %why, retry_in = %retry_in, "Dahua event stream: attach failed again");
        }
        if let End::AuthFailed { attempts, lockout } = end {
            health.set_state(SourceState::AuthFailed);
            if let Some(lockout) = lockout {
                tracing::error!(device = %cam.name, user = %cam.username, attempts, "the device refused the credentials {attempts} times in a row; camgate waits {} before trying again, so the device does not lock its address out; check username/password", camgate_core::config::Dur(*lockout));
                let data = serde_json::json!({
                    "attempts": attempts,
                    "username": cam.username,
                    "retry_in_seconds": lockout.as_secs_f64(),
                });
                self.recorder.device_event(camgate_protocols::dahua_auth::AUTH_FAILED_CODE, State::Pulse, data).await;
            }
        } else {
            health.set_state(SourceState::Disconnected);
        }
    }
}

/// The `reason` label of `camgate_dahua_stream_ends`.
fn end_kind(end: &End) -> &'static str {
    match end {
        End::Stopped => "stopped",
        End::Recycled => "recycled",
        End::Closed => "closed",
        End::Stalled(_) => "stalled",
        End::CodesRefused(_) => "codes_refused",
        End::AuthFailed { .. } => "auth_failed",
        End::Failed(_) => "failed",
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(1)
    }

    #[test]
    fn failures_back_off_from_base_to_max() {
        let mut r = Reconnect::new(Duration::from_millis(1500), Duration::from_secs(60));
        let mut rng = rng();
        let delays: Vec<f64> = (0..10).map(|_| r.after(&End::Closed, None, &mut rng).as_secs_f64()).collect();
        assert!((1.2..=1.8).contains(&delays[0]), "{delays:?}");
        assert!((2.4..=3.6).contains(&delays[1]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= 60.0), "{delays:?}");
        assert!(delays[9] >= 48.0, "{delays:?}");
        assert_eq!(r.failures(), 10);
    }

    #[test]
    fn a_long_healthy_stream_reconnects_at_once_and_resets() {
        let mut r = Reconnect::new(Duration::from_millis(1500), Duration::from_secs(60));
        let mut rng = rng();
        for _ in 0..4 {
            r.after(&End::Failed("x".into()), None, &mut rng);
        }
        let healthy = Some((Duration::from_secs(61), true));
        assert_eq!(r.after(&End::Stalled(Duration::from_secs(15)), healthy, &mut rng), Duration::ZERO);
        assert_eq!(r.failures(), 0);
        // Short, or long but silent: a failure.
        assert!(r.after(&End::Closed, Some((Duration::from_secs(5), true)), &mut rng) >= Duration::from_secs(1));
        assert!(r.after(&End::Closed, Some((Duration::from_secs(600), false)), &mut rng) >= Duration::from_secs(2));
    }

    #[test]
    fn a_200_that_sends_nothing_is_a_failure() {
        let mut r = Reconnect::new(Duration::from_secs(2), Duration::from_secs(60));
        let d = r.after(&End::Failed("closed at once".into()), Some((Duration::ZERO, false)), &mut rng());
        assert!(d >= Duration::from_millis(1600), "{d:?}");
    }

    #[test]
    fn recycles_and_refused_code_lists_reattach_at_once() {
        let mut r = Reconnect::new(Duration::from_secs(2), Duration::from_secs(60));
        let mut rng = rng();
        r.after(&End::Closed, None, &mut rng);
        assert_eq!(r.after(&End::CodesRefused(400), None, &mut rng), Duration::ZERO);
        assert_eq!(r.after(&End::Recycled, Some((Duration::from_secs(3600), true)), &mut rng), Duration::ZERO);
        assert_eq!(r.failures(), 0);
    }

    #[test]
    fn a_spent_credential_budget_waits_the_lockout() {
        let mut r = Reconnect::new(Duration::from_secs(2), Duration::from_secs(60));
        let lockout = Duration::from_secs(1800);
        let end = End::AuthFailed { attempts: 3, lockout: Some(lockout) };
        assert_eq!(r.after(&end, None, &mut rng()), lockout);
        let end = End::AuthFailed { attempts: 1, lockout: None };
        assert!(r.after(&end, None, &mut rng()) <= Duration::from_secs(60));
    }
}
