//! The embeddable Viewtron server: callbacks, once-per-device connect, panics contained.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate::viewtron::Server;
use camgate_protocols::viewtron::SUCCESS_REPLY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn sample(rel: &str) -> Vec<u8> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples/viewtron");
    std::fs::read(shared.join(rel)).unwrap()
}

async fn post(s: &mut TcpStream, body: &[u8]) -> String {
    let mut req = format!("POST /API HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(SUCCESS_REPLY.as_bytes()) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_fire_and_a_panicking_one_does_not_break_the_connection() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    let server = Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .on_connect(move |ip| l1.lock().unwrap().push(format!("connect {ip}")))
        .on_event(move |e, _| {
            if e.category == "face" {
                panic!("a buggy callback");
            }
            let plate = e.plate.as_ref().map(|p| p.number.clone()).unwrap_or_default();
            l2.lock().unwrap().push(format!("event {} {} {plate}", e.category, e.code));
        })
        .on_raw(move |xml, _| l3.lock().unwrap().push(format!("raw {}", xml.len())))
        .on_unparsed(move |_, _, reason| l4.lock().unwrap().push(format!("unparsed {reason}")));
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let task = tokio::spawn(server.serve());

    let mut s = TcpStream::connect(addr).await.unwrap();
    post(&mut s, b"").await;
    post(&mut s, &sample("nvr-v2/face-detection.xml")).await; // its callback panics
    post(&mut s, &sample("nvr-v2/vehicle-lpr.xml")).await; // same connection still works
    post(&mut s, b"<config><oops").await;
    stop.shutdown();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    let log = log.lock().unwrap().clone();
    let lpr_len = sample("nvr-v2/vehicle-lpr.xml").len();
    assert_eq!(
        log,
        [
            "connect 127.0.0.1".to_string(),
            format!("raw {}", sample("nvr-v2/face-detection.xml").len()),
            format!("raw {lpr_len}"),
            "event lpr vehicle JP116D".to_string(),
            "raw 13".to_string(),
            "unparsed parse-error".to_string(),
        ]
    );
}
