//! A really full disk (ENOSPC), on a small tmpfs: writes get 503 with a clear error,
//! nothing is half-written, the gateway keeps serving, and it recovers once space is freed.
//!
//! Mounting needs root, which the test machines and CI have; without it this test fails
//! with a message saying so rather than passing without testing anything.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use camgate::app::Gateway;
use camgate_core::config::Config;
use serde_json::{Value, json};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test mounts a small tmpfs to fill the disk for real and needs root (CI runs as root)"
        );
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount failed: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_keeps_serving_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let _mount = Tmpfs::mount(&data, "4m");
    let text = format!(
        "[site]\ndata_dir = \"{}\"\n[log]\nfile = \"\"\n[http]\nlisten = \"127.0.0.1:0\"\n[webhook]\nlisten = \"127.0.0.1:0\"\n",
        data.display()
    );
    let gw = Gateway::start(&Config::from_toml(&text, "test.toml").unwrap()).await.unwrap();
    // Leave a little room only, held by a file we can delete later.
    let filler = data.join("filler");
    let free = nix::sys::statvfs::statvfs(&data).unwrap();
    let room = free.blocks_available() as u64 * free.fragment_size() as u64;
    std::fs::write(&filler, vec![0u8; room.saturating_sub(600 * 1024) as usize]).unwrap();

    let http = common::plain_client();
    let url = format!("http://{}/api/ingest", gw.webhook_addr().unwrap());
    let image = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, {
        let mut jpeg = camgate_sim::generic::TINY_JPEG.to_vec();
        jpeg.resize(40 * 1024, 0);
        jpeg
    });
    let mut stored = 0u64;
    let refusal = loop {
        let body = json!({"key": format!("disk-{stored}"), "source": "lpr", "kind": "plate",
                          "plate": {"number": "F1"}, "images": [{"role": "plate", "data": image}]});
        let r = http.post(&url).json(&body).send().await.unwrap();
        match r.status().as_u16() {
            200 => stored += 1,
            503 => break r.json::<Value>().await.unwrap(),
            s => panic!("unexpected status {s}"),
        }
        assert!(stored < 200, "the disk never filled up");
    };
    let msg = refusal["error"].as_str().unwrap();
    assert!(msg.contains("full"), "{msg}");
    // Nothing half-written: no temporary files, one whole image per stored event.
    let images = files(&data.join("images"));
    assert!(images.iter().all(|p| p.extension().unwrap() == "jpg"), "{images:?}");
    assert_eq!(images.len() as u64, stored);
    // Still serving reads and health.
    let health = http.get(format!("http://{}/healthz", gw.http_addr().unwrap())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Space comes back: writes work again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let body = json!({"key": "after", "source": "lpr", "kind": "plate", "plate": {"number": "F2"},
                      "images": [{"role": "plate", "data": image}]});
    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.store().head(), stored + 1);
    gw.shutdown().await;
}
