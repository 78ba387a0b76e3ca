//! The login authorization token (avigilon.md §1.1), written from the doc, independently of
//! camgate's own implementation in `camgate-protocols`.
//!
//! ```text
//! authorizationToken = userNonce ":" timestamp ":" hexEncoded [ ":" integrationIdentifier ]
//! hexEncoded         = lowercase hex( SHA-256( UTF8( timestamp + userKey ) ) )
//! ```

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Build an authorization token the way the doc says a client must (§1.1): the nonce is not
/// hashed, only `timestamp + user_key`, and only the digest is lowercase. Handy for tests that
/// drive the emulator without camgate.
pub fn authorization_token(nonce: &str, user_key: &str, timestamp: i64, integration_id: Option<&str>) -> String {
    let digest = hex::encode(Sha256::digest(format!("{timestamp}{user_key}").as_bytes()));
    match integration_id {
        Some(id) => format!("{nonce}:{timestamp}:{digest}:{id}"),
        None => format!("{nonce}:{timestamp}:{digest}"),
    }
}

/// Why a token was refused (the emulator answers `403` for all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not 3 or 4 `:`-separated parts, or a non-numeric timestamp.
    Malformed,
    /// The nonce is not one the server knows.
    UnknownNonce,
    /// The digest is not the lowercase hex SHA-256 of `timestamp + key` (uppercase hex too).
    BadDigest,
    /// `|now - timestamp|` is larger than the allowed skew (seconds).
    Skewed { delta: i64 },
}

impl TokenError {
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenError::Malformed => "authorization token malformed".into(),
            TokenError::UnknownNonce => "authorization token: unknown nonce".into(),
            TokenError::BadDigest => "authorization token: digest mismatch".into(),
            TokenError::Skewed { delta } => format!("authorization token: timestamp {delta} s away from server time"),
        }
    }
}

/// Check a token against the known `nonce -> key` pairs, at server time `now` (Unix seconds).
pub(crate) fn verify(token: &str, keys: &HashMap<String, String>, now: i64, skew_secs: u64) -> Result<(), TokenError> {
    let parts: Vec<&str> = token.split(':').collect();
    if parts.len() != 3 && parts.len() != 4 {
        return Err(TokenError::Malformed);
    }
    let (nonce, ts, digest) = (parts[0], parts[1], parts[2]);
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let ts_num: i64 = ts.parse().map_err(|_| TokenError::Malformed)?;
    let key = keys.get(nonce).ok_or(TokenError::UnknownNonce)?;
    // The hash input is the timestamp exactly as sent, then the key.
    let expected = hex::encode(Sha256::digest(format!("{ts}{key}").as_bytes()));
    if digest != expected {
        return Err(TokenError::BadDigest);
    }
    let delta = now - ts_num;
    if delta.unsigned_abs() > skew_secs {
        return Err(TokenError::Skewed { delta });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The doc's vectors (§1.1, gralin's unit tests).
    #[test]
    fn doc_vectors() {
        assert_eq!(
            authorization_token("myusernonce", "123456", 1647903125, None),
            "myusernonce:1647903125:458cfdb4e2e840423aff977cd1a0080a799531fa12fda6d3b05b8230e64b1b25"
        );
        assert_eq!(
            authorization_token("myusernonce", "myuserkey", 1624125615, None),
            "myusernonce:1624125615:373a0ed810b2a2266e7fac093f8fd03d16f271c1816f0fd3d97739e19db62232"
        );
    }

    #[test]
    fn verification() {
        let keys: HashMap<String, String> = [("FO#12345678".to_owned(), "k".repeat(64))].into();
        let key = "k".repeat(64);
        let now = 1_800_000_000;
        let good = authorization_token("FO#12345678", &key, now - 10, None);
        assert_eq!(verify(&good, &keys, now, 300), Ok(()));
        assert_eq!(verify(&format!("{good}:integration"), &keys, now, 300), Ok(()));
        assert_eq!(verify(&format!("{good}:"), &keys, now, 300), Ok(()));
        // Lowercasing the whole token breaks the nonce (§1.1).
        assert_eq!(verify(&good.to_lowercase(), &keys, now, 300), Err(TokenError::UnknownNonce));
        // Uppercase digest: refused ("must be in lowercase").
        let upper =
            format!("FO#12345678:{}:{}", now, hex::encode(Sha256::digest(format!("{now}{key}"))).to_uppercase());
        assert_eq!(verify(&upper, &keys, now, 300), Err(TokenError::BadDigest));
        // Nonce hashed too: wrong.
        let nonce_hashed =
            format!("FO#12345678:{now}:{}", hex::encode(Sha256::digest(format!("FO#12345678{now}{key}"))));
        assert_eq!(verify(&nonce_hashed, &keys, now, 300), Err(TokenError::BadDigest));
        let old = authorization_token("FO#12345678", &key, now - 301, None);
        assert_eq!(verify(&old, &keys, now, 300), Err(TokenError::Skewed { delta: 301 }));
        let future = authorization_token("FO#12345678", &key, now + 301, None);
        assert_eq!(verify(&future, &keys, now, 300), Err(TokenError::Skewed { delta: -301 }));
        assert_eq!(verify("a:b", &keys, now, 300), Err(TokenError::Malformed));
        assert_eq!(verify("FO#12345678:12x:ab", &keys, now, 300), Err(TokenError::Malformed));
        assert_eq!(verify("a:1:b:c:d", &keys, now, 300), Err(TokenError::Malformed));
    }
}
