use std::time::Duration;

use base64::Engine;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

/// Distinctive enough that finding it anywhere in formatted output is a leak.
const PASSWORD: &str = "Quartz-Zebra-9931!pw";
const URI: &str = "/cgi-bin/eventManager.cgi?action=attach&codes=[VideoMotion,CrossLineDetection]&heartbeat=5";

// RFC 7616 §3.9.1.
const RFC_USER: &str = "Mufasa";
const RFC_PASSWORD: &str = "Circle of Life";
const RFC_REALM: &str = "http-auth@example.org";
const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC_SHA256_HEADER: &str = r#"Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
const RFC_MD5_HEADER: &str = r#"Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=MD5,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

fn dahua_challenge(nonce: &str) -> String {
    format!(
        r#"Digest realm="Login to 4K01FD2PAJ6E3FF", qop="auth", nonce="{nonce}", opaque="5ccc069c403ebaf9f0171e9517f40e41""#
    )
}

fn stale_challenge(nonce: &str) -> String {
    format!(r#"Digest realm="Login to 4K01FD2PAJ6E3FF", qop="auth", nonce="{nonce}", opaque="5ccc069c", stale=TRUE"#)
}

const BASIC: &str = r#"Basic realm="Device_CGI""#;

fn creds() -> Credentials {
    Credentials::new("admin", Secret::new(PASSWORD))
}

fn authenticator() -> Authenticator {
    Authenticator::new(creds(), AuthPolicy::default())
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn digest(header: &str) -> DigestChallenge {
    match parse_challenges([header]).into_iter().next() {
        Some(Challenge::Digest(d)) => d,
        other => panic!("not a usable Digest challenge: {other:?}"),
    }
}

fn rfc_challenge(algorithm: Algorithm) -> DigestChallenge {
    DigestChallenge {
        realm: RFC_REALM.into(),
        nonce: RFC_NONCE.into(),
        opaque: Some(RFC_OPAQUE.into()),
        algorithm: Some(algorithm),
        qop: Qop::Auth,
        stale: false,
        domain: vec![],
    }
}

fn rfc_creds() -> Credentials {
    Credentials::new(RFC_USER, Secret::new(RFC_PASSWORD))
}

/// A quoted parameter of an `Authorization` header value.
fn quoted(header: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let start = header.find(&key).unwrap_or_else(|| panic!("no {name} in {header}")) + key.len();
    header[start..].split('"').next().unwrap().to_owned()
}

/// An unquoted parameter (`nc=`, `qop=`, `algorithm=`).
fn token(header: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=");
    let start = header.find(&key)? + key.len();
    Some(header[start..].split([',', ' ']).next().unwrap().to_owned())
}

/// One send: the header (exposed, for assertions), then the decision for the given response.
fn send(auth: &mut Authenticator, ex: &mut Exchange, rng: &mut StdRng) -> Option<String> {
    auth.authorization(ex, "GET", URI, rng).map(|h| h.expose().to_owned())
}

/// A full request against a device that challenges once with `challenge` and then answers
/// `status`: returns the header of the final send and the final decision.
fn request(auth: &mut Authenticator, challenge: &str, status: u16) -> (Option<String>, Decision) {
    let mut ex = Exchange::default();
    let mut rng = rng();
    let mut header = send(auth, &mut ex, &mut rng);
    if header.is_none() {
        assert_eq!(auth.on_response(&mut ex, 401, [challenge]), Decision::Retry);
        header = send(auth, &mut ex, &mut rng);
    }
    let www: Vec<&str> = if status == 401 { vec![challenge] } else { vec![] };
    let decision = auth.on_response(&mut ex, status, www);
    (header, decision)
}

// ---- known answers ------------------------------------------------------------------------

#[test]
fn rfc7616_md5_known_answer() {
    let c = rfc_challenge(Algorithm::Md5);
    let creds = rfc_creds();
    assert_eq!(c.response(&creds, "GET", "/dir/index.html", 1, RFC_CNONCE), "8ca523f5e9506fed4657c9700eebdbec");
    assert_eq!(
        c.authorization(&creds, "GET", "/dir/index.html", 1, RFC_CNONCE).expose(),
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", uri=\"/dir/index.html\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", \
         response=\"8ca523f5e9506fed4657c9700eebdbec\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    );
}

#[test]
fn rfc7616_sha256_known_answer() {
    let c = rfc_challenge(Algorithm::Sha256);
    let header = c.authorization(&rfc_creds(), "GET", "/dir/index.html", 1, RFC_CNONCE);
    let header = header.expose();
    assert_eq!(quoted(header, "response"), "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    assert_eq!(token(header, "algorithm").as_deref(), Some("SHA-256"));
}

#[test]
fn rfc7616_challenges_parse_and_sha256_is_chosen() {
    // The RFC's 401 carries two headers, SHA-256 first; offer them in both orders.
    for headers in [[RFC_SHA256_HEADER, RFC_MD5_HEADER], [RFC_MD5_HEADER, RFC_SHA256_HEADER]] {
        let all = parse_challenges(headers);
        assert_eq!(all.len(), 2);
        let Some(Challenge::Digest(best)) = best_challenge(&all) else { panic!("{all:?}") };
        assert_eq!(*best, rfc_challenge(Algorithm::Sha256));
    }
}

#[test]
fn session_variants_known_answers() {
    // Expected values computed independently with Python's hashlib from the RFC 7616 inputs:
    // HA1 = H(H(user:realm:pass):nonce:cnonce).
    let creds = rfc_creds();
    let md5 = rfc_challenge(Algorithm::Md5Sess).response(&creds, "GET", "/dir/index.html", 1, RFC_CNONCE);
    assert_eq!(md5, "e783283f46242139c486a698fec7211d");
    let sha = rfc_challenge(Algorithm::Sha256Sess).response(&creds, "GET", "/dir/index.html", 1, RFC_CNONCE);
    assert_eq!(sha, "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7");
}

#[test]
fn rfc2617_qop_auth_known_answer() {
    // RFC 2617 §3.5.
    let c = digest(
        r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    );
    let creds = Credentials::new("Mufasa", Secret::new("Circle Of Life"));
    assert_eq!(c.response(&creds, "GET", "/dir/index.html", 1, "0a4f113b"), "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc2069_no_qop_known_answer_and_header() {
    // The RFC 2617 inputs without qop: response = MD5(HA1:nonce:HA2) (RFC 2069 §2.1.2). The
    // expected value was computed independently with Python's hashlib.
    let c = digest(
        r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    );
    assert_eq!(c.qop, Qop::Rfc2069);
    assert_eq!(c.algorithm, None);
    let creds = Credentials::new("Mufasa", Secret::new("Circle Of Life"));
    let header = c.authorization(&creds, "GET", "/dir/index.html", 1, "ignored");
    assert_eq!(
        header.expose(),
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
         response=\"670fd8c2df070c60b045671b8b24ff02\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
    );
}

#[test]
fn basic_header() {
    let h = basic_authorization(&Credentials::new("Aladdin", Secret::new("open sesame")));
    assert_eq!(h.expose(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "RFC 7617 §2");
}

#[test]
fn quoted_values_are_escaped() {
    let c = digest(r#"Digest realm="a \"quoted\" realm\\x", nonce="n""#);
    assert_eq!(c.realm, r#"a "quoted" realm\x"#);
    let h = c.authorization(&Credentials::new(r#"us"er"#, Secret::new("p")), "GET", "/", 1, "c");
    assert!(h.expose().starts_with(r#"Digest username="us\"er", realm="a \"quoted\" realm\\x""#), "{}", h.expose());
}

// ---- parsing ------------------------------------------------------------------------------

#[test]
fn parses_unquoted_reordered_and_any_case() {
    let c = digest(
        r#"DIGEST Nonce=abc/def+=, QOP=auth, ALGORITHM="md5", Realm="Login to device", STALE=true, Opaque=xyz, domain="/a /b""#,
    );
    assert_eq!(
        c,
        DigestChallenge {
            realm: "Login to device".into(),
            nonce: "abc/def+=".into(),
            opaque: Some("xyz".into()),
            algorithm: Some(Algorithm::Md5),
            qop: Qop::Auth,
            stale: true,
            domain: vec!["/a".into(), "/b".into()],
        }
    );
}

#[test]
fn parses_params_without_commas_and_spaces_around_equals() {
    let c = digest(r#"Digest realm = "r" nonce= "n" qop ="auth""#);
    assert_eq!((c.realm.as_str(), c.nonce.as_str(), c.qop), ("r", "n", Qop::Auth));
}

#[test]
fn qop_lists_and_absence() {
    assert_eq!(digest(r#"Digest nonce="n", qop="auth-int,auth""#).qop, Qop::Auth);
    assert_eq!(digest(r#"Digest nonce="n", qop="AUTH""#).qop, Qop::Auth);
    assert_eq!(digest(r#"Digest nonce="n", qop="""#).qop, Qop::Rfc2069);
    assert_eq!(digest(r#"Digest nonce="n""#).qop, Qop::Rfc2069);
    assert!(matches!(&parse_challenges([r#"Digest nonce="n", qop="auth-int""#])[..], [Challenge::Unsupported(_)]));
}

#[test]
fn stale_values() {
    assert!(digest(r#"Digest nonce="n", stale=TRUE"#).stale);
    assert!(digest(r#"Digest nonce="n", stale="true""#).stale);
    assert!(!digest(r#"Digest nonce="n", stale=false"#).stale);
    assert!(!digest(r#"Digest nonce="n""#).stale);
}

#[test]
fn algorithms() {
    for (token, alg) in [
        ("MD5", Algorithm::Md5),
        ("md5-SESS", Algorithm::Md5Sess),
        ("SHA-256", Algorithm::Sha256),
        ("sha-256-sess", Algorithm::Sha256Sess),
    ] {
        let c = digest(&format!(r#"Digest nonce="n", qop=auth, algorithm={token}"#));
        assert_eq!(c.algorithm, Some(alg), "{token}");
    }
    for bad in [
        r#"Digest nonce="n", algorithm=SHA-512-256"#,
        r#"Digest nonce="n", algorithm=MD5-sess"#, // -sess needs a qop
        r#"Digest realm="r""#,                     // no nonce
        r#"Digest realm="r", nonce="""#,
        r#"Digest nonce="n", realm="r"#, // unterminated
        r#"Digest realm="r" garbage nonce="n""#,
        "Digest realm=\"r\nx\", nonce=\"n\"",
    ] {
        assert!(matches!(&parse_challenges([bad])[..], [Challenge::Unsupported(_)]), "{bad}");
    }
}

#[test]
fn several_challenges_in_one_header_and_across_headers() {
    let one = r#"Negotiate YIIabc==, Basic realm="Device_CGI", NTLM, Digest realm="r", nonce="n", qop="auth", Digest realm="r", nonce="m", algorithm=SHA-256, qop=auth"#;
    let all = parse_challenges([one]);
    let schemes: Vec<String> = all
        .iter()
        .map(|c| match c {
            Challenge::Digest(d) => format!("Digest {}", d.nonce),
            Challenge::Basic(b) => format!("Basic {:?}", b.realm),
            Challenge::Unsupported(u) => u.scheme.clone(),
        })
        .collect();
    assert_eq!(schemes, ["Negotiate", "Basic Some(\"Device_CGI\")", "NTLM", "Digest n", "Digest m"]);
    let Some(Challenge::Digest(best)) = best_challenge(&all) else { panic!() };
    assert_eq!(best.nonce, "m", "SHA-256 wins");

    let split = parse_challenges([BASIC, "NTLM", &dahua_challenge("n")]);
    assert!(matches!(best_challenge(&split), Some(Challenge::Digest(_))), "Digest over Basic");
}

#[test]
fn choice_order() {
    let no_qop = r#"Digest realm="r", nonce="a""#;
    let qop = r#"Digest realm="r", nonce="b", qop=auth"#;
    let sess = r#"Digest realm="r", nonce="c", qop=auth, algorithm=MD5-sess"#;
    let all = parse_challenges([no_qop, sess, qop]);
    let Some(Challenge::Digest(best)) = best_challenge(&all) else { panic!() };
    assert_eq!(best.nonce, "b", "MD5 with qop=auth before MD5-sess and before no qop");
    let all = parse_challenges([qop, qop.replace("\"b\"", "\"b2\"").as_str()]);
    let Some(Challenge::Digest(best)) = best_challenge(&all) else { panic!() };
    assert_eq!(best.nonce, "b", "the first of equals");
    assert_eq!(best_challenge(&parse_challenges(["NTLM", "Bearer realm=x"])), None);
}

#[test]
fn garbage_yields_nothing_usable() {
    for junk in ["", " , ,", "=", "\"Digest\"", "Digest", "///", "Digest \u{0}\u{ff}", "é=ü, Digest ü"] {
        let all = parse_challenges([junk]);
        assert!(best_challenge(&all).is_none(), "{junk:?} -> {all:?}");
    }
}

#[test]
fn unsupported_excerpts_are_short() {
    let long = format!("{} realm=x", "X".repeat(5000));
    let all = parse_challenges([long.as_str()]);
    let [Challenge::Unsupported(u)] = &all[..] else { panic!("{all:?}") };
    assert!(u.scheme.len() < 50, "{}", u.scheme);
}

// ---- the state machine --------------------------------------------------------------------

#[test]
fn first_request_is_bare_then_digest_with_exact_uri_and_unquoted_tokens() {
    let mut auth = authenticator();
    let mut ex = Exchange::default();
    let mut rng = rng();
    assert_eq!(send(&mut auth, &mut ex, &mut rng), None, "nothing before the device asks");
    assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n1").as_str()]), Decision::Retry);
    let h = send(&mut auth, &mut ex, &mut rng).expect("a Digest header");
    assert!(h.starts_with("Digest username=\"admin\", realm=\"Login to 4K01FD2PAJ6E3FF\", nonce=\"n1\""), "{h}");
    assert_eq!(quoted(&h, "uri"), URI, "the request-target exactly, brackets literal");
    assert!(h.contains(", qop=auth, nc=00000001, cnonce=\""), "{h}");
    assert_eq!(token(&h, "algorithm"), None, "not named by the device, not named back");
    assert_eq!(quoted(&h, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    let cnonce = quoted(&h, "cnonce");
    assert_eq!(cnonce.len(), 32);
    let expected = digest(&dahua_challenge("n1")).response(&creds(), "GET", URI, 1, &cnonce);
    assert_eq!(quoted(&h, "response"), expected);
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    assert_eq!(auth.scheme(), Some(Scheme::Digest));
}

#[test]
fn algorithm_is_sent_unquoted_when_the_device_names_it() {
    let mut auth = authenticator();
    let challenge = r#"Digest realm="r", nonce="n", qop="auth", algorithm="SHA-256""#;
    let (h, d) = request(&mut auth, challenge, 200);
    let h = h.unwrap();
    assert_eq!(d, Decision::Authenticated);
    assert!(h.contains(", algorithm=SHA-256, qop=auth, nc=00000001, "), "{h}");
    let expected = digest(challenge).response(&creds(), "GET", URI, 1, &quoted(&h, "cnonce"));
    assert_eq!(quoted(&h, "response"), expected);
}

#[test]
fn nc_increments_per_request_and_restarts_with_a_new_nonce() {
    let mut auth = authenticator();
    let mut rng = rng();
    let (h, _) = request(&mut auth, &dahua_challenge("n1"), 200);
    assert_eq!(token(&h.unwrap(), "nc").as_deref(), Some("00000001"));
    let mut cnonces = std::collections::HashSet::new();
    for expected in ["00000002", "00000003"] {
        let mut ex = Exchange::default();
        let h = send(&mut auth, &mut ex, &mut rng).expect("pre-emptive with the remembered nonce");
        assert_eq!(quoted(&h, "nonce"), "n1");
        assert_eq!(token(&h, "nc").as_deref(), Some(expected));
        assert!(cnonces.insert(quoted(&h, "cnonce")), "a new cnonce per request");
        assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    }
    // Two requests in flight share the nonce but never an nc.
    let (mut a, mut b) = (Exchange::default(), Exchange::default());
    let ha = send(&mut auth, &mut a, &mut rng).unwrap();
    let hb = send(&mut auth, &mut b, &mut rng).unwrap();
    assert_eq!((token(&ha, "nc").unwrap(), token(&hb, "nc").unwrap()), ("00000004".into(), "00000005".into()));
    auth.on_response(&mut a, 200, []);
    auth.on_response(&mut b, 200, []);

    // A new nonce (stale) restarts the count.
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 401, [stale_challenge("n2").as_str()]), Decision::Retry);
    let h = send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!((quoted(&h, "nonce").as_str(), token(&h, "nc").as_deref()), ("n2", Some("00000001")));
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);

    // The same nonce challenged again keeps counting.
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap(); // nc 2
    assert_eq!(auth.on_response(&mut ex, 401, [stale_challenge("n2").as_str()]), Decision::Retry);
    let h = send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(token(&h, "nc").as_deref(), Some("00000003"));
}

#[test]
fn stale_retries_once_without_counting_a_failure() {
    let mut auth = authenticator();
    let mut rng = rng();
    request(&mut auth, &dahua_challenge("n1"), 200);
    let mut ex = Exchange::default();
    let first = send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(quoted(&first, "nonce"), "n1");
    assert_eq!(auth.on_response(&mut ex, 401, [stale_challenge("n2").as_str()]), Decision::Retry);
    assert_eq!(auth.failures(), 0, "stale is not a credential failure");
    let second = send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(quoted(&second, "nonce"), "n2");
    // The firmware loop: stale again for the nonce it just issued.
    assert_eq!(auth.on_response(&mut ex, 401, [stale_challenge("n3").as_str()]), Decision::Refused(Refusal::StaleLoop));
    assert_eq!(auth.failures(), 0);
    // The next request starts over and gets its own stale retry.
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 401, [stale_challenge("n4").as_str()]), Decision::Retry);
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
}

#[test]
fn qop_less_device() {
    let mut auth = authenticator();
    let challenge = r#"Digest realm="Login to device", nonce="0123abcd""#;
    let (h, d) = request(&mut auth, challenge, 200);
    let h = h.unwrap();
    assert_eq!(d, Decision::Authenticated);
    for absent in ["qop", "nc", "cnonce", "algorithm", "opaque"] {
        assert!(!h.contains(&format!(" {absent}=")), "{absent} in {h}");
    }
    let expected = digest(challenge).response(&creds(), "GET", URI, 1, "");
    assert_eq!(quoted(&h, "response"), expected);
    // RFC 2069 by hand: MD5(HA1:nonce:HA2).
    let md5 = |s: String| hex::encode(<md5::Md5 as sha2::Digest>::digest(s.as_bytes()));
    let ha1 = md5(format!("admin:Login to device:{PASSWORD}"));
    let ha2 = md5(format!("GET:{URI}"));
    assert_eq!(expected, md5(format!("{ha1}:0123abcd:{ha2}")));
}

#[test]
fn basic_only_device() {
    let mut auth = authenticator();
    let mut rng = rng();
    let (h, d) = request(&mut auth, BASIC, 200);
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}")));
    assert_eq!(h.as_deref(), Some(expected.as_str()));
    assert_eq!(d, Decision::Authenticated);
    assert_eq!(auth.scheme(), Some(Scheme::Basic));
    // Remembered: the next request authenticates at once.
    let mut ex = Exchange::default();
    assert_eq!(send(&mut auth, &mut ex, &mut rng).as_deref(), Some(expected.as_str()));
    // A refusal of Basic is a credential failure.
    assert_eq!(auth.on_response(&mut ex, 401, [BASIC]), Decision::Failed { attempts: 1, lockout: None });
}

#[test]
fn basic_device_moving_to_digest_is_followed() {
    let mut auth = authenticator();
    let mut rng = rng();
    request(&mut auth, BASIC, 200);
    let mut ex = Exchange::default();
    assert!(send(&mut auth, &mut ex, &mut rng).unwrap().starts_with("Basic "));
    assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n1").as_str()]), Decision::Retry);
    assert!(send(&mut auth, &mut ex, &mut rng).unwrap().starts_with("Digest "));
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    assert_eq!(auth.scheme(), Some(Scheme::Digest));
}

#[test]
fn never_basic_to_a_digest_device() {
    let mut auth = authenticator();
    let mut rng = rng();
    // Offered both: Digest.
    let digest_challenge = dahua_challenge("n1");
    let both = [BASIC, digest_challenge.as_str()];
    let mut ex = Exchange::default();
    assert_eq!(send(&mut auth, &mut ex, &mut rng), None);
    assert_eq!(auth.on_response(&mut ex, 401, both), Decision::Retry);
    assert!(send(&mut auth, &mut ex, &mut rng).unwrap().starts_with("Digest "));
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    // Later the device (or someone in between) asks for Basic only: refused, not counted.
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 401, [BASIC]), Decision::Refused(Refusal::BasicDowngrade));
    assert_eq!(auth.failures(), 0);
    assert_eq!(auth.scheme(), Some(Scheme::Digest));
    let mut ex = Exchange::default();
    assert!(send(&mut auth, &mut ex, &mut rng).is_none_or(|h| h.starts_with("Digest ")));
}

#[test]
fn lockout_budget() {
    let mut auth = authenticator();
    let challenge = dahua_challenge("n1");
    // Wrong password: every request that carries credentials is refused with the same nonce.
    let mut decisions = Vec::new();
    for _ in 0..3 {
        let (h, d) = request(&mut auth, &challenge, 401);
        assert!(h.is_some());
        decisions.push(d);
    }
    assert_eq!(
        decisions,
        [
            Decision::Failed { attempts: 1, lockout: None },
            Decision::Failed { attempts: 2, lockout: None },
            Decision::Failed { attempts: 3, lockout: Some(Duration::from_secs(1800)) },
        ]
    );
    assert!(auth.is_locked_out());
    // After the long wait, one attempt; refused again, it locks out again at once.
    assert_eq!(request(&mut auth, &challenge, 401).1, Decision::Failed { attempts: 4, lockout: Some(DEFAULT_LOCKOUT) });
    // A success (with credentials) restores the budget.
    assert_eq!(request(&mut auth, &challenge, 200).1, Decision::Authenticated);
    assert_eq!(auth.failures(), 0);
    assert!(!auth.is_locked_out());
    assert_eq!(request(&mut auth, &challenge, 401).1, Decision::Failed { attempts: 1, lockout: None });
}

#[test]
fn lockout_is_configurable() {
    let policy = AuthPolicy { max_failures: 2, lockout: Duration::from_secs(600) };
    let mut auth = Authenticator::new(creds(), policy);
    let challenge = dahua_challenge("n1");
    assert_eq!(request(&mut auth, &challenge, 401).1, Decision::Failed { attempts: 1, lockout: None });
    assert_eq!(
        request(&mut auth, &challenge, 401).1,
        Decision::Failed { attempts: 2, lockout: Some(Duration::from_secs(600)) }
    );
    let zero = Authenticator::new(creds(), AuthPolicy { max_failures: 0, lockout: Duration::ZERO });
    assert_eq!(zero.policy().max_failures, 1, "a budget of at least one attempt");
}

#[test]
fn a_fresh_nonce_per_refusal_is_still_a_credential_failure() {
    // Dahua issues a new nonce with each 401: a refusal of the nonce it just issued counts.
    let mut auth = authenticator();
    let mut rng = rng();
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng);
    assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n1").as_str()]), Decision::Retry);
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(
        auth.on_response(&mut ex, 401, [dahua_challenge("n2").as_str()]),
        Decision::Failed { attempts: 1, lockout: None }
    );
}

#[test]
fn a_refused_cached_nonce_counts_retries_fresh_and_stops_reuse() {
    // NVRs with `Connection: close` issue a nonce per request and log a refused cached nonce as
    // a failed login (rroller #603).
    let mut auth = authenticator();
    let mut rng = rng();
    request(&mut auth, &dahua_challenge("n1"), 200);
    let mut ex = Exchange::default();
    let cached = send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(quoted(&cached, "nonce"), "n1");
    assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n2").as_str()]), Decision::Retry);
    assert_eq!(auth.failures(), 1, "the device counted it, so do we");
    let fresh = send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!((quoted(&fresh, "nonce").as_str(), token(&fresh, "nc").as_deref()), ("n2", Some("00000001")));
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    assert_eq!(auth.failures(), 0);
    // From now on: a bare request and a fresh challenge, no refused cached nonces.
    let mut ex = Exchange::default();
    assert_eq!(send(&mut auth, &mut ex, &mut rng), None);
    assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n3").as_str()]), Decision::Retry);
    assert_eq!(quoted(&send(&mut auth, &mut ex, &mut rng).unwrap(), "nonce"), "n3");
}

#[test]
fn a_refused_cached_nonce_can_spend_the_budget() {
    let mut auth = Authenticator::new(creds(), AuthPolicy { max_failures: 1, lockout: DEFAULT_LOCKOUT });
    let mut rng = rng();
    request(&mut auth, &dahua_challenge("n1"), 200);
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(
        auth.on_response(&mut ex, 401, [dahua_challenge("n2").as_str()]),
        Decision::Failed { attempts: 1, lockout: Some(DEFAULT_LOCKOUT) }
    );
}

#[test]
fn forbidden_cached_nonce_gets_a_fresh_handshake() {
    // rroller #647: 403 to a pre-emptively presented nonce.
    let mut auth = authenticator();
    let mut rng = rng();
    request(&mut auth, &dahua_challenge("n1"), 200);
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 403, []), Decision::Retry);
    assert_eq!(send(&mut auth, &mut ex, &mut rng), None, "bare, to get a fresh challenge");
    assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n2").as_str()]), Decision::Retry);
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    assert_eq!(auth.failures(), 0);
    // A 403 to a fresh nonce is a permission matter, not authentication.
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng);
    auth.on_response(&mut ex, 401, [dahua_challenge("n4").as_str()]);
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 403, []), Decision::Other);
}

#[test]
fn a_401_without_challenge_is_not_a_credential_failure() {
    let mut auth = authenticator();
    let mut rng = rng();
    request(&mut auth, &dahua_challenge("n1"), 200);
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 401, []), Decision::Refused(Refusal::NoChallenge));
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 401, ["", " , "]), Decision::Refused(Refusal::NoChallenge));
    assert_eq!(auth.failures(), 0);
}

#[test]
fn unsupported_challenges_are_refused_with_what_was_offered() {
    let mut auth = authenticator();
    let mut ex = Exchange::default();
    let d = auth.on_response(&mut ex, 401, ["NTLM", r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#]);
    let Decision::Refused(r @ Refusal::Unsupported { .. }) = d else { panic!("{d:?}") };
    let msg = r.to_string();
    assert!(msg.contains("NTLM (scheme not supported)"), "{msg}");
    assert!(msg.contains("Digest (algorithm SHA-512-256 not supported)"), "{msg}");
    assert_eq!(auth.scheme(), None);
}

#[test]
fn retries_per_request_are_capped() {
    let mut auth = authenticator();
    let mut rng = rng();
    let mut ex = Exchange::default();
    // A caller that never attaches the header: the device keeps challenging.
    for _ in 0..MAX_RETRIES_PER_REQUEST {
        assert_eq!(auth.on_response(&mut ex, 401, [dahua_challenge("n1").as_str()]), Decision::Retry);
    }
    assert_eq!(
        auth.on_response(&mut ex, 401, [dahua_challenge("n1").as_str()]),
        Decision::Refused(Refusal::RetryLimit)
    );
    // A new exchange starts over.
    let mut ex = Exchange::default();
    send(&mut auth, &mut ex, &mut rng).unwrap();
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
}

#[test]
fn success_without_credentials_keeps_the_budget() {
    let mut auth = authenticator();
    let challenge = dahua_challenge("n1");
    request(&mut auth, &challenge, 401);
    assert_eq!(auth.failures(), 1);
    // An endpoint that needs no login says nothing about the password.
    let mut fresh = Authenticator::new(creds(), AuthPolicy::default());
    let mut ex = Exchange::default();
    assert_eq!(fresh.on_response(&mut ex, 200, []), Decision::Authenticated);
    let mut ex = Exchange::default();
    // `auth` never got a header out for this one: the caller sent it bare.
    assert_eq!(auth.on_response(&mut ex, 200, []), Decision::Authenticated);
    assert_eq!(auth.failures(), 1);
}

#[test]
fn other_statuses_are_not_authentication_outcomes() {
    let mut auth = authenticator();
    let challenge = dahua_challenge("n1");
    request(&mut auth, &challenge, 401);
    for status in [400, 404, 500, 501, 407] {
        let (_, d) = request(&mut auth, &challenge, status);
        assert_eq!(d, Decision::Other, "{status}");
    }
    assert_eq!(auth.failures(), 1);
}

// ---- secrets ------------------------------------------------------------------------------

fn assert_no_secret(text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for needle in [PASSWORD.to_owned(), b64.encode(format!("admin:{PASSWORD}")), b64.encode(PASSWORD)] {
        assert!(!text.contains(&needle), "leak of {needle:?} in {text}");
    }
}

#[test]
fn formatting_never_shows_the_password() {
    let mut outputs = Vec::new();
    let mut rng = rng();
    let c = creds();
    outputs.push(format!("{c:?}"));

    let mut auth = authenticator();
    outputs.push(format!("{auth:?} {auth}"));
    let mut ex = Exchange::default();
    auth.authorization(&mut ex, "GET", URI, &mut rng);
    auth.on_response(&mut ex, 401, [dahua_challenge("n1").as_str()]);
    let header = auth.authorization(&mut ex, "GET", URI, &mut rng).unwrap();
    outputs.push(format!("{header:?} {header} {ex:?} {auth:?} {auth}"));
    let failed = auth.on_response(&mut ex, 401, [dahua_challenge("n2").as_str()]);
    outputs.push(format!("{failed:?} {auth:?} {auth}"));

    let mut basic = authenticator();
    request(&mut basic, BASIC, 200);
    let mut ex = Exchange::default();
    let header = basic.authorization(&mut ex, "GET", URI, &mut rng).unwrap();
    assert!(header.expose().starts_with("Basic "));
    outputs.push(format!("{header:?} {header} {ex:?} {basic:?} {basic}"));

    for refusal in [
        Refusal::NoChallenge,
        Refusal::Unsupported { offered: "NTLM (scheme not supported)".into() },
        Refusal::BasicDowngrade,
        Refusal::StaleLoop,
        Refusal::RetryLimit,
    ] {
        outputs.push(format!("{refusal:?} {refusal} {:?}", Decision::Refused(refusal.clone())));
    }
    for text in &outputs {
        assert_no_secret(text);
    }
    // The accessor is the one way out.
    assert!(creds().username() == "admin" && format!("{auth}").contains("admin"));
}

// ---- properties ---------------------------------------------------------------------------

/// What a device with a wrong password answers to a request carrying credentials.
#[derive(Debug, Clone, Copy)]
enum Reply {
    NewNonce,
    SameNonce,
    Stale,
    NoChallenge,
    Forbidden,
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::NewNonce),
        Just(Reply::SameNonce),
        Just(Reply::Stale),
        Just(Reply::NoChallenge),
        Just(Reply::Forbidden),
    ]
}

proptest! {
    #[test]
    fn parsing_never_panics(headers in proptest::collection::vec(".{0,120}", 0..4)) {
        let all = parse_challenges(headers.iter().map(String::as_str));
        let _ = best_challenge(&all);
    }

    #[test]
    fn parsing_challenge_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("Digest ".to_owned()), Just("Basic ".to_owned()), Just(", ".to_owned()),
                Just("realm=".to_owned()), Just("nonce=".to_owned()), Just("qop=".to_owned()),
                Just("stale=true".to_owned()), Just("\"".to_owned()), Just("\\".to_owned()),
                Just("=".to_owned()), "[a-z0-9/+=]{0,8}",
            ],
            0..30,
        )
    ) {
        let header = parts.concat();
        let all = parse_challenges([header.as_str()]);
        let mut auth = authenticator();
        let mut ex = Exchange::default();
        let _ = auth.on_response(&mut ex, 401, [header.as_str()]);
        let _ = best_challenge(&all);
        let _ = auth.authorization(&mut ex, "GET", URI, &mut rng());
    }

    /// Against a device that refuses the password, a caller that retries as fast as the
    /// decisions allow never gets more than the budget of credential-bearing requests refused
    /// (stale aside) before a lockout, and gets the lockout when the budget is spent.
    #[test]
    fn the_budget_holds_against_any_refusal_pattern(replies in proptest::collection::vec(reply(), 1..30)) {
        let mut auth = authenticator();
        let mut rng = rng();
        let mut nonce = 0u32;
        let mut refused = 0u32;
        let mut locked = false;
        let mut ex = Exchange::default();
        for step in 0..200usize {
            let header = auth.authorization(&mut ex, "GET", URI, &mut rng);
            let current = format!("n{nonce}");
            let decision = match header {
                None => {
                    nonce += 1;
                    auth.on_response(&mut ex, 401, [dahua_challenge(&format!("n{nonce}")).as_str()])
                }
                Some(_) => match replies[step % replies.len()] {
                    Reply::NewNonce => {
                        refused += 1;
                        nonce += 1;
                        auth.on_response(&mut ex, 401, [dahua_challenge(&format!("n{nonce}")).as_str()])
                    }
                    Reply::SameNonce => {
                        refused += 1;
                        auth.on_response(&mut ex, 401, [dahua_challenge(&current).as_str()])
                    }
                    Reply::Stale => {
                        nonce += 1;
                        auth.on_response(&mut ex, 401, [stale_challenge(&format!("n{nonce}")).as_str()])
                    }
                    Reply::NoChallenge => auth.on_response(&mut ex, 401, []),
                    Reply::Forbidden => auth.on_response(&mut ex, 403, []),
                },
            };
            prop_assert_eq!(refused, auth.failures());
            prop_assert!(refused <= DEFAULT_MAX_FAILURES, "{} refused before a lockout", refused);
            match decision {
                Decision::Failed { lockout: Some(_), attempts } => {
                    prop_assert_eq!(attempts, DEFAULT_MAX_FAILURES);
                    locked = true;
                    break;
                }
                Decision::Failed { lockout: None, attempts } => prop_assert!(attempts < DEFAULT_MAX_FAILURES),
                Decision::Authenticated => prop_assert!(false, "the password is wrong"),
                Decision::Retry => {}
                Decision::Refused(_) | Decision::Other => {}
            }
        }
        prop_assert_eq!(locked, refused == DEFAULT_MAX_FAILURES);
    }
}
