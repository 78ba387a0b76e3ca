//! Test harness: runs the real `camgate` binary on loopback with a config in a temp dir.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A config for tests: loopback listeners on free ports, data in `dir`.
pub fn config(dir: &Path, extra: &str) -> String {
    format!(
        r#"
[site]
data_dir = "{data}"
[log]
file = "{log}"
level = "info"
[http]
listen = "127.0.0.1:0"
[webhook]
listen = "127.0.0.1:0"
{extra}
"#,
        data = dir.join("data").display(),
        log = dir.join("logs/camgate.log").display(),
    )
}

pub struct Daemon {
    pub child: Child,
    pub webhook: SocketAddr,
    pub http: SocketAddr,
    pub lines: Arc<Mutex<Vec<String>>>,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_camgate")
}

/// Run `camgate <args>` to completion; returns (status, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .expect("running camgate");
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

impl Daemon {
    /// Write `camgate.toml` into `dir` and start `camgate run -c` on it.
    pub fn start(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Daemon {
        let path = dir.join("camgate.toml");
        std::fs::write(&path, config_text).unwrap();
        Self::start_with(dir, &["run", "-c", path.to_str().unwrap()], env)
    }

    pub fn start_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(bin())
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting camgate");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let lines = lines.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("running") && line.contains("webhook=") => {
                    // A listener that is off (`webhook=off` in the environment-variable
                    // mode) reads as 0.0.0.0:0.
                    let field = |name: &str| -> SocketAddr {
                        let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
                        let value = line[start..].split_whitespace().next().unwrap().trim_matches('"');
                        if value == "off" { SocketAddr::from(([0, 0, 0, 0], 0)) } else { value.parse().unwrap() }
                    };
                    return Daemon { webhook: field("webhook"), http: field("http"), child, lines };
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("camgate did not start:\n{}", lines.lock().unwrap().join("\n"));
                }
            }
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, s: Signal) {
        kill(self.pid(), s).unwrap();
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.signal(Signal::SIGKILL);
        self.child.wait().unwrap();
    }

    /// Wait for exit, at most `limit`; returns the status and how long it took.
    pub fn wait(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("camgate did not exit within {limit:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn ingest_url(&self) -> String {
        format!("http://{}/api/ingest", self.webhook)
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    camgate::sources::dahua::install_crypto_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A client without a total timeout. (reqwest is built with `rustls-no-provider` for the
/// Dahua source, so every client needs the process's crypto provider installed first.)
pub fn plain_client() -> reqwest::Client {
    camgate::sources::dahua::install_crypto_provider();
    reqwest::Client::new()
}

/// Every stored event, read page by page from `/api/events`.
pub async fn all_events(http: &reqwest::Client, daemon: &Daemon) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let page: serde_json::Value = http
            .get(daemon.api(&format!("/api/events?after={after}&limit=1000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            return out;
        }
        after = page["next_after"].as_u64().unwrap();
        out.extend(events.iter().cloned());
    }
}

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

pub fn data_db(dir: &Path) -> PathBuf {
    dir.join("data/camgate.db")
}
