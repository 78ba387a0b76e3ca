//! Credentials and the `Authorization` header values: Digest (RFC 7616 §3.4, RFC 2069 §2.1.2)
//! and Basic (RFC 7617 §2).

use std::fmt::Write as _;

use base64::Engine;
use camgate_core::config::Secret;
use md5::Md5;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::challenge::{Algorithm, DigestChallenge, Qop};

/// A device login. `Debug` shows the username only; the password is a [`Secret`].
#[derive(Debug, Clone)]
pub struct Credentials {
    username: String,
    password: Secret,
}

impl Credentials {
    /// `username` is sent as given (quoted and escaped in Digest), so it should be printable
    /// ASCII without `:` (Basic cannot carry a colon in the user-id).
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Credentials { username: username.into(), password }
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl Algorithm {
    /// Lowercase hex of the hash of `data`.
    fn hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

impl DigestChallenge {
    /// The `response=` value: H(HA1:nonce:nc:cnonce:qop:HA2) with `qop=auth`, H(HA1:nonce:HA2)
    /// without (RFC 2069). HA1 = H(user:realm:pass), for `-sess` H(H(user:realm:pass):nonce:cnonce);
    /// HA2 = H(method:uri). `nc` is formatted as 8 lowercase hex digits.
    ///
    /// Crate-private: a digest response is as sensitive as the header that carries it.
    pub(crate) fn response(&self, credentials: &Credentials, method: &str, uri: &str, nc: u32, cnonce: &str) -> String {
        let h = self.hash_algorithm();
        let mut ha1 = h.hex(&format!("{}:{}:{}", credentials.username, self.realm, credentials.password.expose()));
        if h.is_session() {
            ha1 = h.hex(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = h.hex(&format!("{method}:{uri}"));
        match self.qop {
            Qop::Auth => h.hex(&format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", self.nonce)),
            Qop::Rfc2069 => h.hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    /// The `Authorization` header value answering this challenge for `method` and `uri`, the
    /// request-target exactly as sent (dahua.md §6: same percent-encoding, literal `[`/`]`).
    ///
    /// `qop`, `nc` and `algorithm` are unquoted tokens (some Amcrest firmware refuses the quoted
    /// form, dahua.md §6); the other values are quoted-strings. `algorithm` is named only when the
    /// challenge named it; `opaque` is echoed when given; `qop`, `nc` and `cnonce` are sent only
    /// with `qop=auth`.
    pub fn authorization(&self, credentials: &Credentials, method: &str, uri: &str, nc: u32, cnonce: &str) -> Secret {
        let response = self.response(credentials, method, uri, nc, cnonce);
        let mut h = String::with_capacity(256);
        h.push_str("Digest ");
        push_quoted(&mut h, "username", &credentials.username);
        h.push_str(", ");
        push_quoted(&mut h, "realm", &self.realm);
        h.push_str(", ");
        push_quoted(&mut h, "nonce", &self.nonce);
        h.push_str(", ");
        push_quoted(&mut h, "uri", uri);
        if let Some(algorithm) = self.algorithm {
            let _ = write!(h, ", algorithm={algorithm}");
        }
        if self.qop == Qop::Auth {
            let _ = write!(h, ", qop=auth, nc={nc:08x}, ");
            push_quoted(&mut h, "cnonce", cnonce);
        }
        h.push_str(", ");
        push_quoted(&mut h, "response", &response);
        if let Some(opaque) = &self.opaque {
            h.push_str(", ");
            push_quoted(&mut h, "opaque", opaque);
        }
        Secret::new(h)
    }
}

/// The Basic `Authorization` header value: `Basic base64(user:pass)`.
pub fn basic_authorization(credentials: &Credentials) -> Secret {
    let plain = format!("{}:{}", credentials.username, credentials.password.expose());
    Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(plain)))
}

/// A fresh client nonce: 16 random bytes as 32 hex digits. Pass a cryptographic generator
/// (`rand::rng()`); tests pass a seeded one.
pub fn new_cnonce<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `name="value"` with `\` and `"` escaped (RFC 9110 §5.6.4).
fn push_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}
