//! HTTP authentication for the Dahua CGI clients (event stream first): a small, pure state
//! machine. It never does I/O, never reads a clock and never draws randomness itself: the caller
//! sends the requests, passes the responses in, and supplies a random generator for the cnonce.
//!
//! Rules (dahua.md §6, §7 and the 401 row of §8):
//!
//! * Digest MD5 with `qop=auth`, Digest without qop (RFC 2069), SHA-256 and the `-sess`
//!   variants; when a device offers several, the strongest (see [`best_challenge`]).
//! * `qop`, `nc` and `algorithm` unquoted; `uri` exactly the request-target sent; `nc` counts up
//!   per request signed with one nonce and restarts at 1 with a new nonce.
//! * `stale=true` gets one immediate retry with the new nonce per request and never counts as a
//!   credential failure; a second `stale=true` for the same request gives up on that request
//!   ([`Refusal::StaleLoop`], aiodahua's endless loop).
//! * Basic only after the device asked for Basic; the scheme (and Digest challenge) is remembered
//!   for the device, so later requests authenticate pre-emptively. A device that has offered
//!   Digest never gets Basic ([`Refusal::BasicDowngrade`]).
//! * A budget of [`DEFAULT_MAX_FAILURES`] consecutive refused credential attempts: the attempt
//!   that spends it answers [`Decision::Failed`] with a lockout ([`DEFAULT_LOCKOUT`] unless
//!   configured), so the caller backs off long and emits the `device` event
//!   [`AUTH_FAILED_CODE`] instead of getting the gateway's IP locked out by the camera. Only a
//!   request that carried credentials and succeeded resets the budget.
//! * Credentials never reach `Debug`/`Display` output: the password is a [`Secret`], and the
//!   header values handed out are [`Secret`]s too (they carry the password in Basic and a digest
//!   response in Digest).
//!
//! Use one [`Authenticator`] per device, shared by every request to it (one nonce state and one
//! failure budget per device, §7), and one [`Exchange`] per request:
//!
//! ```
//! # use camgate_core::config::Secret;
//! # use camgate_protocols::dahua_auth::*;
//! let mut auth = Authenticator::new(Credentials::new("admin", Secret::new("pw")), AuthPolicy::default());
//! let mut rng = rand::rng();
//! let uri = "/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=5";
//! let mut exchange = Exchange::default();
//! let challenge = r#"Digest realm="Login to device", qop="auth", nonce="abc", opaque="xyz""#;
//! let mut responses = [(401, vec![challenge]), (200, vec![])].into_iter();
//! loop {
//!     let header = auth.authorization(&mut exchange, "GET", uri, &mut rng);
//!     // ... send the request, with `Authorization: header.expose()` when `header` is `Some` ...
//!     let (status, www_authenticate) = responses.next().unwrap();
//!     match auth.on_response(&mut exchange, status, www_authenticate) {
//!         Decision::Retry => continue,
//!         decision => {
//!             assert_eq!(decision, Decision::Authenticated);
//!             break;
//!         }
//!     }
//! }
//! ```
//!
//! Why hand-written rather than the `digest_auth` crate (0.3.1), which `landscape.md` names as
//! the building block: it parses one Digest challenge per string (no Basic, no choice among
//! several challenges, the `Digest` prefix and parameter names matched case-sensitively) and
//! rejects the whole header on an unknown `qop` or `algorithm` token; its `AuthContext` derives
//! `Debug` over the plain-text password; it draws the cnonce from `rand::thread_rng()` itself
//! unless one is forced; and it pulls rand 0.8, md-5 0.10, sha2 0.10 and digest 0.10 next to
//! the workspace's rand 0.10 and sha2 0.11. The stale / scheme / nonce-reuse / budget state
//! machine has to be written here anyway; the hashing it would save is the ten lines of
//! [`DigestChallenge::authorization`], checked against the RFC 7616 vectors in the tests.

mod challenge;
mod digest;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use camgate_core::config::Secret;
use rand::Rng;

pub use challenge::{
    Algorithm, BasicChallenge, Challenge, DigestChallenge, Qop, UnsupportedChallenge, best_challenge, parse_challenges,
};
pub use digest::{Credentials, basic_authorization, new_cnonce};

/// Refused credential attempts in a row before the long back-off (dahua.md §6: "about 3").
pub const DEFAULT_MAX_FAILURES: u32 = 3;
/// The long back-off once the budget is spent: Dahua (and Hikvision) lock the source IP out for
/// about 30 minutes after repeated failures (dahua.md §6).
pub const DEFAULT_LOCKOUT: Duration = Duration::from_secs(30 * 60);
/// Immediate retries of one request (challenge, stale nonce, refused cached nonce), as rroller
/// caps them; a request that needs more gives up with [`Refusal::RetryLimit`].
pub const MAX_RETRIES_PER_REQUEST: u8 = 3;
/// The `code` of the `device` event the caller emits when [`Decision::Failed`] carries a lockout.
pub const AUTH_FAILED_CODE: &str = "auth_failed";

/// The failure budget of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Refused credential attempts in a row that spend the budget (at least 1).
    pub max_failures: u32,
    /// How long the caller waits after the budget is spent before trying again.
    pub lockout: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy { max_failures: DEFAULT_MAX_FAILURES, lockout: DEFAULT_LOCKOUT }
    }
}

/// What the caller does with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Status below 400: the request went through. When it carried credentials the failure
    /// budget is restored.
    Authenticated,
    /// Send the same request again now, with a new [`Authenticator::authorization`] header
    /// (first challenge, `stale=true`, a cached nonce the device no longer takes).
    Retry,
    /// The device refused the credentials (401 to a request that carried them, the nonce being
    /// current). `attempts` is the count of refused attempts in a row for this device.
    /// `lockout` is set once the budget is spent: wait that long before the next request to this
    /// device and emit the `device` event [`AUTH_FAILED_CODE`]; otherwise retry on the normal
    /// reconnect back-off.
    Failed {
        /// Refused credential attempts in a row, this one included.
        attempts: u32,
        /// The long back-off, when this attempt spent the budget.
        lockout: Option<Duration>,
    },
    /// A 401 that says nothing about the credentials (see [`Refusal`]); the budget is not
    /// charged. Back off as for any failed request.
    Refused(Refusal),
    /// Any other status (403 and 404, 400/500 for a long code list, ...): not an authentication
    /// outcome; the budget is unchanged.
    Other,
}

/// Why a 401 was not held against the credentials. The messages say what happened and what to
/// do; they never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401 without any challenge.
    #[error(
        "the device answered 401 without an authentication challenge; Dahua does this when its \
         connection or session limit is exhausted (\"Exceeded maximum number of connections\"), \
         not for a wrong password: back off and reduce the concurrent requests to it"
    )]
    NoChallenge,
    /// Only challenges camgate cannot answer.
    #[error(
        "the device offered no authentication camgate supports (offered: {offered}); camgate \
         answers Digest MD5, MD5-sess, SHA-256 and SHA-256-sess with qop=auth or without qop, and \
         Basic: check the device's authentication settings"
    )]
    Unsupported {
        /// The challenges offered, as `scheme (reason)`.
        offered: String,
    },
    /// Basic asked for by a device that has offered Digest before.
    #[error(
        "the device asked for Basic authentication after offering Digest; camgate will not send \
         the password in clear to it (a downgrade); check the device and restart the source to \
         accept Basic"
    )]
    BasicDowngrade,
    /// `stale=true` again right after the retry with the new nonce.
    #[error(
        "the device declared its fresh nonce stale again (stale=true twice for one request, a \
         known firmware loop); gave up on this request without counting a credential failure"
    )]
    StaleLoop,
    /// More than [`MAX_RETRIES_PER_REQUEST`] immediate retries for one request.
    #[error(
        "the device kept challenging one request ({MAX_RETRIES_PER_REQUEST} immediate retries) \
         without accepting or refusing the credentials; gave up on this request"
    )]
    RetryLimit,
}

/// The scheme remembered for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP Basic.
    Basic,
    /// HTTP Digest.
    Digest,
}

/// What one request sent, as far as authentication goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Sent {
    #[default]
    Nothing,
    Basic,
    /// `fresh`: signed with the nonce this exchange was just challenged with (as opposed to a
    /// nonce remembered from an earlier request).
    Digest {
        nonce: String,
        fresh: bool,
    },
}

/// The authentication state of one request across its immediate retries. Create one per
/// request (`Exchange::default()`); pass it to every [`Authenticator::authorization`] and
/// [`Authenticator::on_response`] call for that request. Keeping this outside the
/// [`Authenticator`] lets concurrent requests to one device share its nonce state.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    sent: Sent,
    /// The nonce this request was challenged with (set when it was told to retry).
    offered_nonce: Option<String>,
    retries: u8,
    stale_retried: bool,
}

/// The authentication state of one device: credentials, remembered scheme and challenge, nonce
/// count, failure budget.
#[derive(Debug, Clone)]
pub struct Authenticator {
    credentials: Credentials,
    policy: AuthPolicy,
    /// The challenge answered last: Digest or Basic, never unsupported.
    challenge: Option<Challenge>,
    /// Requests signed with the current Digest nonce.
    nc: u32,
    /// The device has offered Digest: never answer it with Basic.
    digest_seen: bool,
    /// Whether a remembered nonce may be used pre-emptively on a new request. Cleared once the
    /// device refuses one: devices that issue a nonce per request (`Connection: close` NVRs)
    /// log every refused cached nonce as a failed login (rroller #603), so they get a bare
    /// request and a fresh challenge instead.
    reuse_nonce: bool,
    failures: u32,
}

impl Authenticator {
    /// A device not heard from yet: the first request goes without credentials.
    pub fn new(credentials: Credentials, policy: AuthPolicy) -> Self {
        let policy = AuthPolicy { max_failures: policy.max_failures.max(1), ..policy };
        Authenticator {
            credentials,
            policy,
            challenge: None,
            nc: 0,
            digest_seen: false,
            reuse_nonce: true,
            failures: 0,
        }
    }

    /// The `Authorization` header value for the next send of `exchange`'s request, or `None`
    /// to send it without one (nothing remembered yet, or a cached nonce this device refuses).
    /// `uri` is the request-target exactly as it goes on the request line. Each Digest header
    /// takes the next `nc` and a new cnonce from `rng`.
    pub fn authorization<R: Rng + ?Sized>(
        &mut self,
        exchange: &mut Exchange,
        method: &str,
        uri: &str,
        rng: &mut R,
    ) -> Option<Secret> {
        exchange.sent = Sent::Nothing;
        match &self.challenge {
            Some(Challenge::Basic(_)) => {
                exchange.sent = Sent::Basic;
                Some(basic_authorization(&self.credentials))
            }
            Some(Challenge::Digest(d)) => {
                let fresh = exchange.offered_nonce.as_deref() == Some(d.nonce.as_str());
                if !fresh && !self.reuse_nonce {
                    return None;
                }
                self.nc = self.nc.wrapping_add(1).max(1);
                let header = d.authorization(&self.credentials, method, uri, self.nc, &new_cnonce(rng));
                exchange.sent = Sent::Digest { nonce: d.nonce.clone(), fresh };
                Some(header)
            }
            Some(Challenge::Unsupported(_)) | None => None,
        }
    }

    /// Digest the response to the last send of `exchange`'s request: its status and every
    /// `WWW-Authenticate` header value (in order; none is fine).
    pub fn on_response<'h>(
        &mut self,
        exchange: &mut Exchange,
        status: u16,
        www_authenticate: impl IntoIterator<Item = &'h str>,
    ) -> Decision {
        let sent = std::mem::take(&mut exchange.sent);
        let decision = match status {
            401 => self.on_unauthorized(exchange, sent, www_authenticate),
            // rroller #647: an NVR answered 403 to a pre-emptively presented nonce; a fresh
            // handshake (bare request, new challenge) works.
            403 if matches!(sent, Sent::Digest { fresh: false, .. }) => {
                self.reuse_nonce = false;
                self.retry(exchange, None)
            }
            s if s < 400 => {
                if sent != Sent::Nothing {
                    self.failures = 0;
                }
                Decision::Authenticated
            }
            _ => Decision::Other,
        };
        if decision != Decision::Retry {
            *exchange = Exchange::default();
        }
        decision
    }

    fn on_unauthorized<'h>(
        &mut self,
        exchange: &mut Exchange,
        sent: Sent,
        www_authenticate: impl IntoIterator<Item = &'h str>,
    ) -> Decision {
        let challenges = parse_challenges(www_authenticate);
        let usable: Vec<Challenge> =
            challenges.iter().filter(|c| !(self.digest_seen && matches!(c, Challenge::Basic(_)))).cloned().collect();
        let Some(chosen) = best_challenge(&usable).cloned() else {
            return Decision::Refused(if challenges.is_empty() {
                Refusal::NoChallenge
            } else if challenges.iter().any(|c| matches!(c, Challenge::Basic(_))) {
                Refusal::BasicDowngrade
            } else {
                let offered: Vec<String> = challenges
                    .iter()
                    .filter_map(|c| match c {
                        Challenge::Unsupported(u) => Some(u.to_string()),
                        _ => None,
                    })
                    .collect();
                Refusal::Unsupported { offered: offered.join(", ") }
            });
        };
        let stale = matches!(&chosen, Challenge::Digest(d) if d.stale);
        let new_nonce = match &chosen {
            Challenge::Digest(d) => Some(d.nonce.clone()),
            _ => None,
        };
        self.remember(chosen);
        match sent {
            // The first challenge for this request (or the device dropped the cached one).
            Sent::Nothing => self.retry(exchange, new_nonce),
            // The response was right, only the nonce had expired.
            Sent::Digest { .. } if stale => {
                if exchange.stale_retried {
                    Decision::Refused(Refusal::StaleLoop)
                } else {
                    exchange.stale_retried = true;
                    self.retry(exchange, new_nonce)
                }
            }
            Sent::Digest { nonce, fresh } => {
                if fresh || new_nonce.as_deref() == Some(nonce.as_str()) {
                    // Refused with a nonce the device had just issued or still holds.
                    self.fail()
                } else {
                    // A cached nonce refused without `stale`: the nonce may be all that was
                    // wrong, so retry with the new one at once, and stop reusing nonces on this
                    // device; but the device logged a failed login, so it counts.
                    self.reuse_nonce = false;
                    self.fail_then_retry(exchange, new_nonce)
                }
            }
            // Basic refused by a device that still wants Basic.
            Sent::Basic if new_nonce.is_none() => self.fail(),
            // Basic refused by a device that now wants Digest: same as a refused cached nonce.
            Sent::Basic => self.fail_then_retry(exchange, new_nonce),
        }
    }

    /// Remember `challenge` (Digest or Basic) as the device's scheme; a new nonce restarts `nc`.
    fn remember(&mut self, challenge: Challenge) {
        if let Challenge::Digest(d) = &challenge {
            self.digest_seen = true;
            if !matches!(&self.challenge, Some(Challenge::Digest(old)) if old.nonce == d.nonce) {
                self.nc = 0;
            }
        }
        self.challenge = Some(challenge);
    }

    fn retry(&mut self, exchange: &mut Exchange, offered_nonce: Option<String>) -> Decision {
        if exchange.retries >= MAX_RETRIES_PER_REQUEST {
            return Decision::Refused(Refusal::RetryLimit);
        }
        exchange.retries += 1;
        exchange.offered_nonce = offered_nonce;
        Decision::Retry
    }

    /// Count a refused attempt that may not be the credentials' fault: retry at once unless
    /// that spent the budget.
    fn fail_then_retry(&mut self, exchange: &mut Exchange, offered_nonce: Option<String>) -> Decision {
        match self.fail() {
            Decision::Failed { lockout: None, .. } => self.retry(exchange, offered_nonce),
            spent => spent,
        }
    }

    fn fail(&mut self) -> Decision {
        self.failures = self.failures.saturating_add(1);
        let lockout = (self.failures >= self.policy.max_failures).then_some(self.policy.lockout);
        Decision::Failed { attempts: self.failures, lockout }
    }

    /// The username (for logs and events).
    pub fn username(&self) -> &str {
        self.credentials.username()
    }

    /// The budget in force.
    pub fn policy(&self) -> AuthPolicy {
        self.policy
    }

    /// The scheme remembered for the device, once it has challenged.
    pub fn scheme(&self) -> Option<Scheme> {
        match self.challenge {
            Some(Challenge::Basic(_)) => Some(Scheme::Basic),
            Some(Challenge::Digest(_)) => Some(Scheme::Digest),
            _ => None,
        }
    }

    /// The challenge remembered for the device (Digest or Basic).
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// Refused credential attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the budget is spent: the next refused attempt locks out again at once.
    pub fn is_locked_out(&self) -> bool {
        self.failures >= self.policy.max_failures
    }

    /// Restore the budget (an operator asked to try again now, e.g. after fixing the password).
    pub fn reset_failures(&mut self) {
        self.failures = 0;
    }
}

impl fmt::Display for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {:?}, ", self.credentials.username())?;
        match &self.challenge {
            Some(Challenge::Digest(d)) => {
                let qop = match d.qop {
                    Qop::Auth => "qop=auth",
                    Qop::Rfc2069 => "no qop",
                };
                write!(f, "Digest {} {qop} (realm {:?}, nc {})", d.hash_algorithm(), d.realm, self.nc)?;
            }
            Some(Challenge::Basic(b)) => write!(f, "Basic (realm {:?})", b.realm.as_deref().unwrap_or(""))?,
            _ => f.write_str("not challenged yet")?,
        }
        write!(f, ", {}/{} failed attempts", self.failures, self.policy.max_failures)
    }
}
