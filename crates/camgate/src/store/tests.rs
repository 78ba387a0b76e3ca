use std::sync::Arc;

use camgate_core::{Event, Kind, Vendor};

use super::*;
use crate::bus::Bus;
use crate::metrics::Metrics;

fn event(key: &str) -> Event {
    Event::new(key, "cam-1", Vendor::Generic, Kind::Motion)
}

async fn open(dir: &std::path::Path) -> (Store, Writer, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let (s, w) = Store::open(StoreOptions::in_dir(dir), metrics.clone(), Bus::default()).await.unwrap();
    (s, w, metrics)
}

#[tokio::test]
async fn duplicate_keys_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, metrics) = open(dir.path()).await;
    assert_eq!(store.append(event("a")).await.unwrap(), Appended::New(1));
    assert_eq!(store.append(event("a")).await.unwrap(), Appended::Duplicate);
    // Duplicates inside one batch: the first is new, the rest are duplicates.
    let out = store.append_many(vec![event("b"), event("a"), event("b"), event("c")]).await.unwrap();
    assert_eq!(out, [Appended::New(2), Appended::Duplicate, Appended::Duplicate, Appended::New(3)]);
    assert_eq!(store.count_key("a").await.unwrap(), 1);
    assert_eq!(store.count_key("b").await.unwrap(), 1);
    assert_eq!(store.head(), 3);
    let all = store.read_after(0, 100, &EventFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.event.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    let text = metrics.render();
    assert!(text.contains(r#"camgate_events_stored_total{source="cam-1",kind="motion"} 3"#), "{text}");
    assert!(text.contains(r#"camgate_events_duplicate_total{source="cam-1",kind="motion"} 3"#), "{text}");
    writer.close().await;
}

#[tokio::test]
async fn concurrent_appends_are_grouped_and_all_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, metrics) = open(dir.path()).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                assert!(matches!(store.append(event(&format!("{t}-{i}"))).await.unwrap(), Appended::New(_)));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.head(), 2000);
    let text = metrics.render();
    // Fewer transactions than events: group commit happened.
    let count_line = text.lines().find(|l| l.starts_with("camgate_writer_batch_events_count")).unwrap();
    let commits: u64 = count_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(commits < 2000, "{commits} commits for 2000 events");
    writer.close().await;
}

#[tokio::test]
async fn cursors_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, _) = open(dir.path()).await;
    store.append_many((0..5).map(|i| event(&i.to_string())).collect()).await.unwrap();
    assert_eq!(store.cursor("jsonl").await.unwrap(), 0);
    store.set_cursor("jsonl", 3).await.unwrap();
    store.set_cursor("log", 5).await.unwrap();
    // A cursor never moves back.
    store.set_cursor("log", 2).await.unwrap();
    writer.close().await;
    drop(store);

    let (store, writer, _) = open(dir.path()).await;
    assert_eq!(store.cursor("jsonl").await.unwrap(), 3);
    assert_eq!(store.cursor("log").await.unwrap(), 5);
    assert_eq!(store.head(), 5, "head seq is restored");
    assert_eq!(store.append(event("new")).await.unwrap(), Appended::New(6));
    writer.close().await;
}

#[tokio::test]
async fn dead_letters_are_kept_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, metrics) = open(dir.path()).await;
    let payload = b"<config><broken".to_vec();
    store
        .dead_letter(DeadLetter {
            source: "10.0.0.9".into(),
            received_at: jiff::Timestamp::now(),
            reason: "unexpected end of XML".into(),
            payload: payload.clone(),
        })
        .await
        .unwrap();
    let got = store.dead_letters(10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload);
    assert_eq!(got[0].reason, "unexpected end of XML");
    assert!(metrics.render().contains(r#"camgate_dead_letters_total{source="10.0.0.9"} 1"#));
    writer.close().await;
}

#[tokio::test]
async fn filters_by_source_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, _) = open(dir.path()).await;
    let mut a = event("1");
    a.source = "gate".into();
    a.kind = Kind::Plate;
    store.append_many(vec![a, event("2"), event("3")]).await.unwrap();
    let f = EventFilter { source: Some("gate".into()), kind: None };
    assert_eq!(store.read_after(0, 10, &f).await.unwrap().len(), 1);
    let f = EventFilter { source: None, kind: Some(Kind::Motion) };
    let got = store.read_after(0, 10, &f).await.unwrap();
    assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.read_after(2, 10, &EventFilter::default()).await.unwrap().len(), 1);
    writer.close().await;
}

#[tokio::test]
async fn images_are_files_with_size_and_hash_and_duplicates_leave_none() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, _) = open(dir.path()).await;
    let jpeg = camgate_sim::generic::TINY_JPEG.to_vec();
    let e = event("img");
    let day = e.received_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    assert_eq!(store.append_with_images(e, vec![("source".into(), jpeg.clone())]).await.unwrap(), Appended::New(1));
    let stored = &store.read_after(0, 1, &EventFilter::default()).await.unwrap()[0].event;
    let img = &stored.images[0];
    assert_eq!(img.role, "source");
    assert!(img.path.starts_with(&format!("images/{:04}/{:02}/{:02}/", day.year(), day.month(), day.day())));
    assert!(img.path.ends_with("-source.jpg"));
    assert_eq!(img.bytes, jpeg.len() as u64);
    assert_eq!(img.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&jpeg)));
    assert_eq!(std::fs::read(dir.path().join(&img.path)).unwrap(), jpeg);

    // The same key again: not stored, and its image file is removed.
    let dup = event("img");
    let outcome = store.append_with_images(dup, vec![("source".into(), jpeg.clone())]).await.unwrap();
    assert_eq!(outcome, Appended::Duplicate);
    let files: Vec<_> = walk(&dir.path().join("images"));
    assert_eq!(files.len(), 1, "{files:?}");

    // Two images of the same role get two files.
    let two = event("two");
    store
        .append_with_images(two, vec![("target".into(), jpeg.clone()), ("target".into(), b"\x89PNG..".to_vec())])
        .await
        .unwrap();
    let stored = &store.read_after(1, 1, &EventFilter::default()).await.unwrap()[0].event;
    assert!(stored.images[0].path.ends_with("-target.jpg"), "{:?}", stored.images);
    assert!(stored.images[1].path.ends_with("-target-2.png"), "{:?}", stored.images);
    assert_eq!(walk(&dir.path().join("images")).len(), 3);
    writer.close().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn a_full_store_refuses_writes_clearly_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = StoreOptions::in_dir(dir.path());
    o.max_size = Some(256 * 1024);
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(o, metrics.clone(), Bus::default()).await.unwrap();
    let big = serde_json::json!({ "pad": "x".repeat(4000) });
    let mut stored = 0u64;
    let err = loop {
        let mut e = event(&format!("k{stored}"));
        e.data = Some(big.clone());
        match store.append(e).await {
            Ok(Appended::New(_)) => stored += 1,
            Ok(Appended::Duplicate) => unreachable!(),
            Err(e) => break e,
        }
        assert!(stored < 1000, "the size limit never hit");
    };
    assert!(matches!(err, StoreError::Full(_)), "{err:?}");
    assert!(err.is_unavailable());
    assert!(err.to_string().contains("full"), "{err}");
    // Nothing half-written: every stored event reads back whole, the failed one is absent.
    let all = store.read_after(0, 1000, &EventFilter::default()).await.unwrap();
    assert_eq!(all.len() as u64, stored);
    assert_eq!(store.count_key(&format!("k{stored}")).await.unwrap(), 0);
    // Small writes that fit still work (the writer survived the error).
    store.set_cursor("log", 1).await.unwrap();
    assert!(metrics.render().contains(r#"camgate_writer_errors_total{reason="full"}"#));
    writer.close().await;
}

#[tokio::test]
async fn closed_store_refuses_and_flushes_queued_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, _) = open(dir.path()).await;
    let pending: Vec<_> = (0..100)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.append(event(&format!("q{i}"))).await })
        })
        .collect();
    // Let the appends queue up, then close: everything queued commits.
    tokio::task::yield_now().await;
    writer.close().await;
    let mut committed = 0;
    for p in pending {
        match p.await.unwrap() {
            Ok(Appended::New(_)) => committed += 1,
            Ok(Appended::Duplicate) => unreachable!(),
            Err(e) => assert!(matches!(e, StoreError::Closed), "{e:?}"),
        }
    }
    assert!(matches!(store.append(event("late")).await, Err(StoreError::Closed)));
    drop(store);
    let (store, writer, _) = open(dir.path()).await;
    assert_eq!(store.head(), committed, "every acknowledged append is stored");
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_head_is_published_before_the_append_is_answered() {
    // A sink told to stop right after an append returned must already see that event.
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, _) = open(dir.path()).await;
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    let Appended::New(seq) = store.append(event(&format!("h{t}-{i}"))).await.unwrap() else {
                        unreachable!()
                    };
                    assert!(store.head() >= seq, "answered before the head moved: head {} < seq {seq}", store.head());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    writer.close().await;
}

#[tokio::test]
async fn source_cursors_are_per_source_and_key_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, _) = open(dir.path()).await;
    assert_eq!(store.source_cursor("acc", "cam1").await.unwrap(), None);
    store.set_source_cursor("acc", "cam1", "2026-05-17T19:00:00Z").await.unwrap();
    store.set_source_cursor("acc", "cam1", "2026-05-17T19:01:00Z").await.unwrap();
    store.set_source_cursor("acc", "cam2", "2026-05-17T18:00:00Z").await.unwrap();
    store.set_source_cursor("other", "cam1", "x").await.unwrap();
    writer.close().await;
    let (store, writer, _) = open(dir.path()).await;
    assert_eq!(store.source_cursor("acc", "cam1").await.unwrap().as_deref(), Some("2026-05-17T19:01:00Z"));
    assert_eq!(store.source_cursor("acc", "cam2").await.unwrap().as_deref(), Some("2026-05-17T18:00:00Z"));
    assert_eq!(store.source_cursor("other", "cam1").await.unwrap().as_deref(), Some("x"));
    writer.close().await;
}

#[tokio::test]
async fn events_inside_a_scheduled_window_are_tagged_with_its_name() {
    use camgate_core::schedule::{LocalWindow, Schedule};
    use jiff::civil::{date, time};
    let tz = jiff::tz::TimeZone::get("America/Bogota").unwrap();
    // 20:00 to 01:00 local: crosses midnight.
    let window =
        LocalWindow { date: date(2026, 5, 17), name: "Final".into(), start: time(20, 0, 0, 0), end: time(1, 0, 0, 0) };
    let schedule = Schedule::new([&window], &tz).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::in_dir(dir.path());
    options.schedule = Some(Arc::new(schedule));
    let (store, writer) = Store::open(options, Arc::new(Metrics::new()), Bus::default()).await.unwrap();
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let mut inside = event("inside");
    inside.occurred_at = Some(at("2026-05-18T05:30:00Z")); // 00:30 local, the next day
    let mut outside = event("outside");
    outside.occurred_at = Some(at("2026-05-18T06:30:00Z")); // 01:30 local
    let mut own = event("own");
    own.occurred_at = Some(at("2026-05-18T02:00:00Z"));
    own.schedule = Some("sent by the client".into());
    store.append_many(vec![inside, outside, own]).await.unwrap();
    let all = store.read_after(0, 10, &EventFilter::default()).await.unwrap();
    let tags: Vec<Option<&str>> = all.iter().map(|e| e.event.schedule.as_deref()).collect();
    assert_eq!(tags, [Some("Final"), None, Some("sent by the client")]);
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_sustained_writes_the_wal_starts_over_and_no_write_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let o = StoreOptions { wal_max: 256 * 1024, ..StoreOptions::in_dir(dir.path()) };
    let (store, writer) = Store::open(o, metrics.clone(), Bus::default()).await.unwrap();
    let restarts = |m: &Metrics| -> u64 {
        let text = m.render();
        let line = text.lines().find(|l| l.starts_with("camgate_store_wal_restarts_total ")).unwrap_or("x 0");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // Producers that never pause: the writer always has the next transaction queued, so a
    // PASSIVE checkpoint alone never catches up with it and the WAL would only grow.
    let stop = CancellationToken::new();
    let mut producers = Vec::new();
    for t in 0..8 {
        let (store, stop) = (store.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut acked = 0u64;
            while !stop.is_cancelled() {
                let batch = (0..10).map(|i| event(&format!("{t}-{acked}-{i}"))).collect();
                let out = store.append_many(batch).await.unwrap();
                assert!(out.iter().all(|o| matches!(o, Appended::New(_))));
                acked += 10;
            }
            acked
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while restarts(&metrics) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the WAL never started over:\n{}", metrics.render());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let mut acked = 0;
    for p in producers {
        acked += p.await.unwrap();
    }
    // Writes held for the checkpoint were answered after their commit, like all others.
    assert_eq!(store.head(), acked);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(store.pool()).await.unwrap();
    assert_eq!(n as u64, acked);
    let text = metrics.render();
    assert!(text.contains("camgate_store_checkpoint_hold_seconds_count"), "{text}");
    writer.close().await;
    // Closing folds the WAL back in and truncates it.
    let wal = std::fs::metadata(dir.path().join("camgate.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0);
}
