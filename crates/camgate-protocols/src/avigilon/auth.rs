//! Logging in (§1): the authorization token, the login and logout bodies, the session.

use camgate_core::config::Secret;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::response::{ResponseError, result_object, result_of};
use super::{json_type, text};

/// The login `authorizationToken` (§1.1):
/// `nonce:timestamp:lowercase_hex(sha256(timestamp + user_key))[:integration_id]`.
///
/// The user key is hashed after the decimal timestamp, with no separator; the nonce is not
/// hashed and is used exactly as given (never lower-cased: nonces hold capitals and `#`). The
/// fourth part is added only when `integration_id` is a non-empty string. `timestamp_secs` is
/// the server's Unix time in whole seconds ([`token_timestamp`]); build a fresh token for
/// every login.
///
/// ```
/// # use camgate_core::config::Secret;
/// # use camgate_protocols::avigilon::authorization_token;
/// let t = authorization_token("myusernonce", 1624125615, &Secret::new("myuserkey"), Some("acme-1"));
/// assert_eq!(
///     t.expose(),
///     "myusernonce:1624125615:373a0ed810b2a2266e7fac093f8fd03d16f271c1816f0fd3d97739e19db62232:acme-1"
/// );
/// ```
pub fn authorization_token(
    nonce: &str,
    timestamp_secs: i64,
    user_key: &Secret,
    integration_id: Option<&str>,
) -> Secret {
    let ts = timestamp_secs.to_string();
    let mut h = Sha256::new();
    h.update(ts.as_bytes());
    h.update(user_key.expose().as_bytes());
    let digest = hex::encode(h.finalize());
    let mut token = String::with_capacity(nonce.len() + ts.len() + 66 + integration_id.map_or(0, |i| i.len() + 1));
    token.push_str(nonce);
    token.push(':');
    token.push_str(&ts);
    token.push(':');
    token.push_str(&digest);
    if let Some(id) = integration_id.filter(|i| !i.is_empty()) {
        token.push(':');
        token.push_str(id);
    }
    Secret::new(token)
}

/// The token's timestamp: `now` by this machine's clock plus the server's clock offset (how far
/// the ACC server's clock is ahead of ours, `timestamp_offset` in the configuration), in whole
/// seconds.
pub fn token_timestamp(now: Timestamp, server_clock_offset: SignedDuration) -> i64 {
    let server_now = now.checked_add(server_clock_offset).unwrap_or(now);
    server_now.as_second()
}

/// The body of `POST login` (§1.2): only the four fields every client sends (`accessToken` is
/// not for integrations; `clientVersion` must not be guessed).
#[derive(Debug, Clone, Copy)]
pub struct LoginRequest<'a> {
    pub username: &'a str,
    pub password: &'a Secret,
    /// How the session shows in ACC (`client_name` in the configuration).
    pub client_name: &'a str,
    /// From [`authorization_token`].
    pub authorization_token: &'a Secret,
}

impl LoginRequest<'_> {
    /// The JSON body. A [`Secret`]: it holds the password and the token.
    pub fn body(&self) -> Secret {
        let v = json!({
            "username": self.username,
            "password": self.password.expose(),
            "clientName": self.client_name,
            "authorizationToken": self.authorization_token.expose(),
        });
        Secret::new(v.to_string())
    }
}

/// A logged-in session (`result` of a successful login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `result.session`: send it as [`SESSION_HEADER`](super::SESSION_HEADER). Opaque.
    pub session: Secret,
    /// `result.externalUserId`.
    pub external_user_id: Option<String>,
    /// `result.domainId`.
    pub domain_id: Option<String>,
}

/// Read the answer to `POST login`. A refused login is [`ResponseError::Api`] (401: user
/// name or password; 403: the authorization token, often the nonce, the key or clock skew).
pub fn parse_login(http_status: u16, body: &[u8]) -> Result<Session, ResponseError> {
    let mut result = result_object(http_status, body)?;
    let session = match result.remove("session") {
        Some(Value::String(s)) if !s.trim().is_empty() => Secret::new(s.trim()),
        Some(Value::String(_)) => return Err(ResponseError::invalid("`result.session` is empty")),
        Some(other) => {
            return Err(ResponseError::invalid(format!("`result.session` is {}, not a string", json_type(&other))));
        }
        None => return Err(ResponseError::invalid("a login success without `result.session`")),
    };
    let field = |k: &str| result.get(k).and_then(Value::as_str).and_then(text);
    Ok(Session { session, external_user_id: field("externalUserId"), domain_id: field("domainId") })
}

/// The body of `POST logout`: `{"session": "..."}`. A [`Secret`].
pub fn logout_body(session: &Secret) -> Secret {
    Secret::new(json!({ "session": session.expose() }).to_string())
}

/// Read the answer to `POST logout` (`{"status":"success"}`). An empty body with a success
/// status is taken as success too.
pub fn parse_logout(http_status: u16, body: &[u8]) -> Result<(), ResponseError> {
    if (200..300).contains(&http_status) && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    result_of(http_status, body).map(drop)
}
