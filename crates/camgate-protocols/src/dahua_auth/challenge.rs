//! `WWW-Authenticate` parsing (RFC 7235 §4.1, Digest RFC 7616 §3.3, Basic RFC 7617 §2) and the
//! choice of the challenge to answer.
//!
//! Lenient where devices differ (parameter names in any case and order, values quoted or not,
//! commas between parameters optional, several challenges per header and several headers) and
//! strict where a guess would cost a credential attempt: a challenge that is malformed or asks for
//! something camgate cannot compute is reported as [`Challenge::Unsupported`], never answered.

use std::fmt;

/// The hash a Digest challenge asks for (RFC 7616 §3.3 `algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, also the default when the challenge names no algorithm.
    Md5,
    /// `MD5-sess`: HA1 also covers the server and client nonces.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The token as it appears in the headers (`MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`).
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (HA1 = H(H(user:realm:pass):nonce:cnonce)).
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Case-insensitive parse of an `algorithm=` value.
    pub fn from_token(token: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess]
            .into_iter()
            .find(|a| a.token().eq_ignore_ascii_case(token))
    }

    /// Preference when a device offers several: SHA-256 over MD5, plain over `-sess`.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// The quality of protection camgate will use for a Digest challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `qop=auth` (RFC 2617/7616): the response covers `nc`, `cnonce` and `qop`.
    Auth,
    /// No `qop` offered (RFC 2069): response = H(HA1:nonce:HA2); no `nc`/`cnonce` sent.
    Rfc2069,
}

/// A Digest challenge camgate can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm` (empty when the device sent none).
    pub realm: String,
    /// `nonce` (never empty).
    pub nonce: String,
    /// `opaque`, echoed back verbatim when present.
    pub opaque: Option<String>,
    /// `algorithm` as the device stated it; `None` when it named none (MD5 is then implied, and
    /// the `Authorization` header names none either, as curl and python-requests do).
    pub algorithm: Option<Algorithm>,
    /// `qop=auth` when offered (also inside a list such as `"auth,auth-int"`), else RFC 2069.
    pub qop: Qop,
    /// `stale=true` (any case): the previous response was right but its nonce expired.
    pub stale: bool,
    /// `domain`: the URIs the challenge covers (informational).
    pub domain: Vec<String>,
}

impl DigestChallenge {
    /// The hash to use: the stated `algorithm`, MD5 when none was stated.
    pub fn hash_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

/// A Basic challenge (RFC 7617).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicChallenge {
    /// `realm`, e.g. `Device_CGI` on 2014/2015 Dahua firmware.
    pub realm: Option<String>,
}

/// A challenge camgate will not answer, kept so that a refusal can say what was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedChallenge {
    /// The auth-scheme as sent (shortened when absurdly long).
    pub scheme: String,
    /// Why it cannot be answered.
    pub reason: String,
}

impl fmt::Display for UnsupportedChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.scheme, self.reason)
    }
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Digest ...` with an algorithm and qop camgate supports.
    Digest(DigestChallenge),
    /// `Basic realm="..."`.
    Basic(BasicChallenge),
    /// Any other scheme, or a Digest/Basic challenge that is malformed or unsupported.
    Unsupported(UnsupportedChallenge),
}

impl Challenge {
    /// Preference rank; `None` for challenges that cannot be answered.
    fn rank(&self) -> Option<(u8, u8, u8)> {
        match self {
            Challenge::Digest(d) => {
                let qop = match d.qop {
                    Qop::Auth => 1,
                    Qop::Rfc2069 => 0,
                };
                Some((2, d.hash_algorithm().strength(), qop))
            }
            Challenge::Basic(_) => Some((1, 0, 0)),
            Challenge::Unsupported(_) => None,
        }
    }
}

/// Longest scheme name or parameter excerpt quoted back in an [`UnsupportedChallenge`].
const MAX_EXCERPT: usize = 40;

/// Parse every challenge in the given `WWW-Authenticate` header values, in order.
///
/// Never fails and never panics: text that is not a challenge is skipped, a challenge that
/// cannot be answered comes back as [`Challenge::Unsupported`].
pub fn parse_challenges<'h>(headers: impl IntoIterator<Item = &'h str>) -> Vec<Challenge> {
    let mut raw = Vec::new();
    for header in headers {
        split_challenges(header, &mut raw);
    }
    raw.into_iter().map(RawChallenge::interpret).collect()
}

/// The challenge to answer: the strongest Digest (SHA-256 before MD5, plain before `-sess`,
/// `qop=auth` before RFC 2069), else Basic; the first of equals. `None` when nothing is
/// answerable.
pub fn best_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    let mut best: Option<(&Challenge, (u8, u8, u8))> = None;
    for c in challenges {
        if let Some(rank) = c.rank()
            && best.is_none_or(|(_, b)| rank > b)
        {
            best = Some((c, rank));
        }
    }
    best.map(|(c, _)| c)
}

/// A challenge as written: scheme plus parameters, before any interpretation.
#[derive(Debug)]
struct RawChallenge {
    scheme: String,
    /// Names lowercased; values unquoted and unescaped.
    params: Vec<(String, String)>,
    /// Why the text could not be read, if it could not.
    malformed: Option<&'static str>,
}

impl RawChallenge {
    fn new(scheme: &str) -> Self {
        RawChallenge { scheme: excerpt(scheme), params: Vec::new(), malformed: None }
    }

    fn mark(&mut self, why: &'static str) {
        self.malformed.get_or_insert(why);
    }

    /// The first value of a parameter (names are compared lowercased).
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn unsupported(&self, reason: impl Into<String>) -> Challenge {
        Challenge::Unsupported(UnsupportedChallenge { scheme: self.scheme.clone(), reason: reason.into() })
    }

    fn interpret(self) -> Challenge {
        if let Some(why) = self.malformed {
            return self.unsupported(why);
        }
        if self.params.iter().any(|(_, v)| v.chars().any(|c| c.is_control() && c != '\t')) {
            // The values are echoed back in our `Authorization` header: no header injection.
            return self.unsupported("control character in a parameter");
        }
        if self.scheme.eq_ignore_ascii_case("basic") {
            return Challenge::Basic(BasicChallenge { realm: self.param("realm").map(str::to_owned) });
        }
        if !self.scheme.eq_ignore_ascii_case("digest") {
            return self.unsupported("scheme not supported");
        }
        let Some(nonce) = self.param("nonce").filter(|n| !n.is_empty()) else {
            return self.unsupported("no nonce");
        };
        let algorithm = match self.param("algorithm") {
            None => None,
            Some(a) => match Algorithm::from_token(a.trim()) {
                Some(a) => Some(a),
                None => return self.unsupported(format!("algorithm {} not supported", excerpt(a))),
            },
        };
        let qop = match self.param("qop") {
            None => Qop::Rfc2069,
            Some(list) => {
                let mut tokens = list.split(',').map(str::trim).filter(|t| !t.is_empty()).peekable();
                if tokens.peek().is_none() {
                    Qop::Rfc2069
                } else if tokens.any(|t| t.eq_ignore_ascii_case("auth")) {
                    Qop::Auth
                } else {
                    return self.unsupported(format!("qop {} offers no \"auth\"", excerpt(list)));
                }
            }
        };
        if qop == Qop::Rfc2069 && algorithm.is_some_and(Algorithm::is_session) {
            // HA1 of a -sess algorithm covers a cnonce, which is only sent with a qop.
            return self.unsupported("a -sess algorithm without qop");
        }
        Challenge::Digest(DigestChallenge {
            realm: self.param("realm").unwrap_or_default().to_owned(),
            nonce: nonce.to_owned(),
            opaque: self.param("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale: self.param("stale").is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
            domain: self.param("domain").map(|d| d.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
        })
    }
}

/// At most [`MAX_EXCERPT`] characters of device-supplied text, for messages.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(MAX_EXCERPT) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Split one header value into challenges (RFC 7235 §4.1 grammar, read leniently).
///
/// A bare token starts a new challenge when it opens the header or follows a comma; after a
/// scheme it is that scheme's token68 (`Negotiate abc==`), which camgate does not use.
fn split_challenges(header: &str, out: &mut Vec<RawChallenge>) {
    let b = header.as_bytes();
    let mut i = 0;
    let mut current: Option<RawChallenge> = None;
    let mut after_comma = true;
    while i < b.len() {
        if b[i] == b',' {
            after_comma = true;
            i += 1;
            continue;
        }
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            // Not a token (stray quote, `/`, non-ASCII...): the current challenge is garbled.
            if let Some(c) = current.as_mut() {
                c.mark("malformed parameters");
            }
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            continue;
        }
        let token = &header[start..i];
        let mut j = i;
        while j < b.len() && is_ows(b[j]) {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            j += 1;
            while j < b.len() && is_ows(b[j]) {
                j += 1;
            }
            let value = read_value(header, &mut j);
            if let Some(c) = current.as_mut() {
                match value {
                    Some(v) => c.params.push((token.to_ascii_lowercase(), v)),
                    None => c.mark("unterminated quoted string"),
                }
            }
            i = j;
        } else if after_comma || current.is_none() {
            out.extend(current.take());
            current = Some(RawChallenge::new(token));
        } else if let Some(c) = current.as_mut()
            && !c.params.is_empty()
        {
            // A bare word in the middle of parameters.
            c.mark("malformed parameters");
        }
        after_comma = false;
    }
    out.extend(current);
}

/// Read a parameter value at `*i`: a quoted-string (backslash escapes) or a token, which ends
/// at a comma or whitespace. `None` for an unterminated quoted-string.
fn read_value(header: &str, i: &mut usize) -> Option<String> {
    let b = header.as_bytes();
    if *i < b.len() && b[*i] == b'"' {
        *i += 1;
        let mut value = Vec::new();
        while *i < b.len() {
            match b[*i] {
                b'"' => {
                    *i += 1;
                    return Some(String::from_utf8_lossy(&value).into_owned());
                }
                b'\\' if *i + 1 < b.len() => {
                    value.push(b[*i + 1]);
                    *i += 2;
                }
                c => {
                    value.push(c);
                    *i += 1;
                }
            }
        }
        None
    } else {
        let start = *i;
        while *i < b.len() && b[*i] != b',' && !b[*i].is_ascii_whitespace() {
            *i += 1;
        }
        Some(header[start..*i].to_owned())
    }
}
