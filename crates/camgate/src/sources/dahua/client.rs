//! HTTP clients for Dahua devices: one per distinct TLS/connect setting, shared by every
//! camera that uses it (a client is a connection pool and a TLS configuration; 5,000 plain
//! HTTP cameras share one).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use camgate_core::config::DahuaCamera;

/// How long an idle keep-alive connection (after a `401` challenge) is kept for the retry.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// TCP keep-alive probes on the stream socket: a dead peer is noticed even if the stall
/// timeout is set long.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    https: bool,
    verify_tls: bool,
    ca_bundle: Option<PathBuf>,
    connect_timeout: Duration,
}

/// Builds and shares clients.
#[derive(Debug, Default)]
pub struct Clients {
    built: HashMap<ClientKey, reqwest::Client>,
}

impl Clients {
    /// The client for `camera`; an error names what is wrong with its TLS settings.
    pub fn for_camera(&mut self, camera: &DahuaCamera) -> Result<reqwest::Client, String> {
        let key = ClientKey {
            https: camera.https,
            verify_tls: camera.verify_tls,
            ca_bundle: camera.ca_bundle.clone(),
            connect_timeout: camera.connect_timeout.get(),
        };
        if let Some(c) = self.built.get(&key) {
            return Ok(c.clone());
        }
        let client = build(&key)?;
        self.built.insert(key, client.clone());
        Ok(client)
    }
}

fn build(key: &ClientKey) -> Result<reqwest::Client, String> {
    // reqwest builds its TLS configuration even for a client used for plain HTTP only.
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .http1_only()
        // Firmware quirks in response heads are not worth a failed attach.
        .http1_allow_obsolete_multiline_headers_in_responses(true)
        .http1_ignore_invalid_headers_in_responses(true)
        .http1_allow_spaces_after_header_name_in_responses(true)
        .connect_timeout(key.connect_timeout)
        // Never a total timeout: the stream is meant to last (dahua.md §2). Silence is
        // caught per read by the stall timeout.
        .tcp_keepalive(TCP_KEEPALIVE)
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(2)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("camgate/", env!("CARGO_PKG_VERSION")));
    if key.https {
        b = b.tls_backend_rustls();
        if !key.verify_tls {
            b = b.tls_danger_accept_invalid_certs(true);
        } else if let Some(path) = &key.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| format!("ca_bundle {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_bundle {}: not a PEM certificate bundle: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_bundle {}: no certificate in the file", path.display()));
            }
            b = b.tls_certs_only(certs);
        }
    }
    b.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// rustls with the `ring` provider (landscape.md §3: aws-lc-rs is a slow C build). Installed
/// once per process; a provider installed earlier (by an embedding program) is kept.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
