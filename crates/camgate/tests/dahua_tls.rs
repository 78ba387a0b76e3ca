//! Dahua devices over HTTPS: `https`, `verify_tls` and `ca_bundle` with the real binary.
//!
//! The simulated camera speaks plain HTTP; a TLS terminator in front of it (rustls, a
//! certificate for 127.0.0.1 signed by a CA made up for the test) plays the camera's HTTPS
//! port, as the camera's own web server would.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate_sim::dahua::{AuthMode, DahuaServer};
use common::{Daemon, client, config, temp};
use nix::sys::signal::Signal;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer, pki_types::PrivatePkcs8KeyDer};

/// A CA (PEM) and a TLS acceptor with a certificate for 127.0.0.1 that it signed.
fn tls_for_loopback() -> (String, TlsAcceptor) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    (ca.pem(), TlsAcceptor::from(Arc::new(server)))
}

/// Terminate TLS on a new port and pass the bytes to `upstream`, until the runtime ends.
async fn tls_terminator(acceptor: TlsAcceptor, upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to pass on.
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let Ok(mut plain) = TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

fn camera(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[camera]]\nname = \"{name}\"\nvendor = \"dahua\"\nhost = \"127.0.0.1\"\nport = {port}\nhttps = true\n\
         username = \"admin\"\npassword = \"tls-secret\"\nheartbeat = 1\nbackoff_base = \"200ms\"\nbackoff_max = \"1s\"\n{extra}\n"
    )
}

#[test]
fn https_devices_are_checked_against_the_ca_bundle_or_not_at_all_when_told() {
    let dir = temp();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ca_pem, acceptor) = tls_for_loopback();
    let ca_path = dir.path().join("device-ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let (sim, port) = rt.block_on(async {
        let sim = DahuaServer::builder()
            .credentials("admin", "tls-secret")
            .auth(AuthMode::digest())
            .event_interval(Some(Duration::from_millis(200)))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let port = tls_terminator(acceptor, sim.local_addr()).await.port();
        (sim, port)
    });
    let cameras = [
        camera("with-ca", port, &format!("ca_bundle = \"{}\"", ca_path.display())),
        camera("unverified", port, "verify_tls = false"),
        // The system's roots do not know the test CA: the handshake must fail.
        camera("system-roots", port, ""),
    ]
    .concat();
    let jsonl = dir.path().join("events.jsonl");
    let cfg = config(dir.path(), &format!("{cameras}\n[[sink]]\ntype = \"jsonl\"\npath = \"{}\"\n", jsonl.display()));
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);

    let http = client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let sources = loop {
        let sources: serde_json::Value =
            rt.block_on(async { http.get(daemon.api("/api/sources")).send().await.unwrap().json().await.unwrap() });
        let by_name =
            |n: &str| sources["sources"].as_array().unwrap().iter().find(|s| s["name"] == n).cloned().unwrap();
        // `events` counts the `connected` device event too.
        let done = ["with-ca", "unverified"].iter().all(|n| by_name(n)["events"].as_u64().unwrap_or(0) >= 4)
            && by_name("system-roots")["last_error"].is_string();
        if done {
            break sources;
        }
        assert!(Instant::now() < deadline, "HTTPS cameras did not get events in time: {sources:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let by_name = |n: &str| sources["sources"].as_array().unwrap().iter().find(|s| s["name"] == n).cloned().unwrap();
    let refused = by_name("system-roots");
    assert_ne!(refused["state"], "connected", "{refused:#}");
    assert_eq!(refused["events"], 0, "a device with an untrusted certificate delivers nothing: {refused:#}");
    let error = refused["last_error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("certificate"), "the error says why: {error}");

    daemon.signal(Signal::SIGTERM);
    let (status, _) = daemon.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for name in ["with-ca", "unverified"] {
        let motion = events.iter().filter(|e| e["source"] == name && e["kind"] != "device").count();
        assert!(motion >= 3, "{name}: {motion} events");
    }
    assert!(!events.iter().any(|e| e["source"] == "system-roots" && e["kind"] != "device"));
    assert!(!daemon.output().contains("tls-secret"), "the password stays out of the log");
    rt.block_on(sim.shutdown());
}
