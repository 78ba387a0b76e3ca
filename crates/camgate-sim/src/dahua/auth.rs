//! Server side of §6: challenges, Digest verification, Basic, lockout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{AuthMode, DahuaServerBuilder, DigestAlgorithm, Lockout};

/// What the server does with a request, as far as authentication goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go on.
    Ok,
    /// `401` with this `WWW-Authenticate` value; `kind` says what to count.
    Challenge { header: String, kind: Refused },
}

/// Why a request got a `401` with a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No credentials: the first leg of the handshake.
    Bare,
    /// Wrong credentials (or a nonce/nc replay).
    Failed,
    /// Right response, expired nonce.
    Stale,
    /// Locked out.
    Locked,
}

#[derive(Debug, Default)]
struct NonceState {
    /// Requests accepted with it.
    uses: u32,
    /// Highest `nc` seen (qop only).
    last_nc: u32,
    /// Consumed (per-request nonces) or stale.
    dead: bool,
}

#[derive(Debug, Default)]
struct State {
    nonces: HashMap<String, NonceState>,
    failures: u32,
    locked_until: Option<Instant>,
}

/// Authentication state of one server (one budget, as a device keeps per source IP).
#[derive(Debug)]
pub(crate) struct Auth {
    mode: AuthMode,
    user: String,
    password: String,
    realm: String,
    opaque: String,
    lockout: Option<Lockout>,
    counter: AtomicU64,
    state: std::sync::Mutex<State>,
}

impl Auth {
    pub(crate) fn new(cfg: &DahuaServerBuilder) -> Self {
        Auth {
            mode: cfg.auth,
            user: cfg.user.clone(),
            password: cfg.password.clone(),
            realm: format!("Login to {}", cfg.serial),
            opaque: hex::encode(Sha256::digest(cfg.serial.as_bytes()))[..32].to_string(),
            lockout: cfg.lockout,
            counter: AtomicU64::new(0),
            state: std::sync::Mutex::new(State::default()),
        }
    }

    /// Judge a request: `method`, request-target as sent, `Authorization` value.
    pub(crate) fn check(&self, method: &str, target: &str, authorization: Option<&str>) -> Verdict {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(self.mode, AuthMode::None) {
            return Verdict::Ok;
        }
        let now = Instant::now();
        if let Some(until) = st.locked_until {
            if now < until {
                let header = self.challenge(&mut st, false);
                return Verdict::Challenge { header, kind: Refused::Locked };
            }
            st.locked_until = None;
            st.failures = 0;
        }
        let outcome = match (self.mode, authorization) {
            (_, None) => Outcome::Bare,
            (AuthMode::Basic, Some(a)) => self.basic(a),
            (AuthMode::Digest { qop, algorithm, nonce_per_request, stale_after }, Some(a)) => {
                self.digest(&mut st, method, target, a, qop, algorithm, nonce_per_request, stale_after)
            }
            (AuthMode::None, Some(_)) => Outcome::Ok,
        };
        match outcome {
            Outcome::Ok => {
                st.failures = 0;
                Verdict::Ok
            }
            Outcome::Bare => Verdict::Challenge { header: self.challenge(&mut st, false), kind: Refused::Bare },
            Outcome::Stale => Verdict::Challenge { header: self.challenge(&mut st, true), kind: Refused::Stale },
            Outcome::Failed => {
                st.failures += 1;
                if let Some(l) = self.lockout
                    && st.failures >= l.max_failures
                {
                    st.locked_until = Some(now + l.duration);
                }
                Verdict::Challenge { header: self.challenge(&mut st, false), kind: Refused::Failed }
            }
        }
    }

    fn challenge(&self, st: &mut State, stale: bool) -> String {
        let AuthMode::Digest { qop, algorithm, .. } = self.mode else {
            return r#"Basic realm="Device_CGI""#.to_string();
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nonce = hex::encode(&Sha256::digest(format!("{}:{n}:{:?}", self.opaque, Instant::now()).as_bytes())[..16]);
        st.nonces.insert(nonce.clone(), NonceState::default());
        let mut h = format!(r#"Digest realm="{}", "#, self.realm);
        if qop {
            h.push_str(r#"qop="auth", "#);
        }
        if algorithm == DigestAlgorithm::Sha256 {
            h.push_str("algorithm=SHA-256, ");
        }
        h.push_str(&format!(r#"nonce="{nonce}", opaque="{}""#, self.opaque));
        if stale {
            h.push_str(", stale=true");
        }
        h
    }

    fn basic(&self, authorization: &str) -> Outcome {
        let Some(b64) = strip_scheme(authorization, "Basic") else { return Outcome::Failed };
        let Ok(plain) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else { return Outcome::Failed };
        if plain == format!("{}:{}", self.user, self.password).as_bytes() { Outcome::Ok } else { Outcome::Failed }
    }

    #[allow(clippy::too_many_arguments)]
    fn digest(
        &self,
        st: &mut State,
        method: &str,
        target: &str,
        authorization: &str,
        qop: bool,
        algorithm: DigestAlgorithm,
        nonce_per_request: bool,
        stale_after: Option<u32>,
    ) -> Outcome {
        let Some(params) = strip_scheme(authorization, "Digest").map(parse_params) else { return Outcome::Failed };
        let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("realm"), get("nonce"), get("uri"), get("response"))
        else {
            return Outcome::Failed;
        };
        if user != self.user || realm != self.realm || uri != target || get("opaque").is_some_and(|o| o != self.opaque)
        {
            return Outcome::Failed;
        }
        let alg_ok = match (algorithm, get("algorithm")) {
            (DigestAlgorithm::Md5, None) => true,
            (DigestAlgorithm::Md5, Some(a)) => a.eq_ignore_ascii_case("MD5"),
            (DigestAlgorithm::Sha256, Some(a)) => a.eq_ignore_ascii_case("SHA-256"),
            (DigestAlgorithm::Sha256, None) => false,
        };
        if !alg_ok {
            return Outcome::Failed;
        }
        let h = |s: String| match algorithm {
            DigestAlgorithm::Md5 => hex::encode(Md5::digest(s.as_bytes())),
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(s.as_bytes())),
        };
        let ha1 = h(format!("{}:{}:{}", self.user, self.realm, self.password));
        let ha2 = h(format!("{method}:{target}"));
        let mut nc_value = 0;
        let expected = if qop {
            let (Some(q), Some(nc), Some(cnonce)) = (get("qop"), get("nc"), get("cnonce")) else {
                return Outcome::Failed;
            };
            let Ok(parsed) = u32::from_str_radix(nc, 16) else { return Outcome::Failed };
            if q != "auth" || nc.len() != 8 {
                return Outcome::Failed;
            }
            nc_value = parsed;
            h(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
        } else {
            if get("qop").is_some() {
                return Outcome::Failed;
            }
            h(format!("{ha1}:{nonce}:{ha2}"))
        };
        if expected != response {
            return Outcome::Failed;
        }
        let Some(ns) = st.nonces.get_mut(nonce) else { return Outcome::Failed };
        if ns.dead {
            // Per-request nonces are refused without `stale` (§6), stale ones with it.
            return if nonce_per_request { Outcome::Failed } else { Outcome::Stale };
        }
        if stale_after.is_some_and(|n| ns.uses >= n) {
            ns.dead = true;
            return Outcome::Stale;
        }
        if qop {
            if nc_value <= ns.last_nc {
                return Outcome::Failed;
            }
            ns.last_nc = nc_value;
        }
        ns.uses += 1;
        if nonce_per_request {
            ns.dead = true;
        }
        Outcome::Ok
    }
}

enum Outcome {
    Ok,
    Bare,
    Failed,
    Stale,
}

/// The rest after `scheme ` (scheme compared without case).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim_start();
    let head = value.get(..scheme.len())?;
    (head.eq_ignore_ascii_case(scheme) && value[scheme.len()..].starts_with(' ')).then(|| &value[scheme.len() + 1..])
}

/// `k=v, k="v \" v", ...` into pairs, quotes removed and escapes resolved.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
}
