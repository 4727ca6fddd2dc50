//! The journal on a real file system: durability across reopen, damage tolerance, group
//! commit, bounded size, retention, crash-safe compaction, the data-dir lock and write errors.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use caisse_ap_relay::engine::journal::{Journal, Options, FILE_NAME, TMP_NAME};
use caisse_ap_relay::engine::record::{Record, Resolution, ResolvedAs, ResolvedBy, State};
use caisse_ap_relay::protocol::{Action, Method};
use futures_util::future::join_all;

const RECENT: &str = "2026-11-23T12:00:00.000Z";

fn record(id: &str, seq: u64) -> Record {
    Record {
        id: id.to_owned(),
        till: "till-1".to_owned(),
        terminal: "tpe-1".to_owned(),
        amount: 1250,
        currency: "EUR".to_owned(),
        action: Action::Debit,
        method: Method::Card,
        refund_of: None,
        confirm_duplicate: false,
        state: State::Approved,
        result: None,
        resolution: None,
        created_at: RECENT.to_owned(),
        updated_at: RECENT.to_owned(),
        seq,
        receipt: None,
    }
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

/// Default options with the clock stopped at `now` (RFC 3339).
fn options_at(now: &str) -> Options {
    let now: SystemTime =
        time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .into();
    Options {
        clock: Arc::new(move || now),
        ..Options::default()
    }
}

fn open(dir: &Path) -> (Journal, Vec<Record>) {
    Journal::open_with(dir, options_at("2026-11-23T13:00:00Z")).expect("journal opens")
}

/// Runs `f` with log output captured, and returns what was logged.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (value, text)
}

fn append_file(dir: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(FILE_NAME))
        .unwrap();
    file.write_all(bytes).unwrap();
}

#[tokio::test]
async fn reopen_returns_latest_record_per_id_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, records) = open(dir.path());
    assert!(records.is_empty());
    for (id, seq) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)] {
        journal.append(&record(id, seq)).await.unwrap();
    }
    drop(journal);
    let (_journal, records) = open(dir.path());
    assert_eq!(ids(&records), ["a", "b", "c"]);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [3, 5, 4]);
    assert_eq!(
        Journal::read(dir.path()).unwrap(),
        records,
        "read sees the same, lock or not"
    );
}

#[tokio::test]
async fn torn_last_line_is_skipped_and_cut_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    journal.append(&record("a", 1)).await.unwrap();
    journal.append(&record("b", 2)).await.unwrap();
    drop(journal);
    let line = serde_json::to_string(&record("c", 3)).unwrap();
    append_file(
        dir.path(),
        format!("0badc0de {}", &line[..line.len() / 2]).as_bytes(),
    );

    let ((journal, records), logs) = logged(|| open(dir.path()));
    assert!(logs.contains("journal: skipping torn last line"), "{logs}");
    assert_eq!(ids(&records), ["a", "b"]);
    journal.append(&record("d", 4)).await.unwrap();
    drop(journal);
    let ((_, records), logs) = logged(|| open(dir.path()));
    assert_eq!(ids(&records), ["a", "b", "d"]);
    assert!(
        !logs.contains("journal: skipping"),
        "next append readable: {logs}"
    );
}

#[tokio::test]
async fn corrupt_line_in_the_middle_is_skipped_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    for (id, seq) in [("a", 1), ("b", 2), ("c", 3)] {
        journal.append(&record(id, seq)).await.unwrap();
    }
    drop(journal);
    let path = dir.path().join(FILE_NAME);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"id\":\"b\"", "\"id\":\"B\"", 1)).unwrap();

    let ((journal, records), logs) = logged(|| open(dir.path()));
    assert!(logs.contains("journal: skipping damaged line"), "{logs}");
    assert!(logs.contains("checksum mismatch"), "{logs}");
    assert_eq!(ids(&records), ["a", "c"]);
    let kept_aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("journal.damaged-")
        })
        .expect("damaged copy kept");
    assert_eq!(
        std::fs::read_to_string(kept_aside.path()).unwrap(),
        text.replacen("\"id\":\"b\"", "\"id\":\"B\"", 1)
    );
    journal.append(&record("d", 4)).await.unwrap();
    drop(journal);
    assert_eq!(ids(&Journal::read(dir.path()).unwrap()), ["a", "c", "d"]);
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs() {
    const N: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let records: Vec<Record> = (0..N).map(|i| record(&format!("tx-{i}"), i)).collect();
    let results = join_all(records.iter().map(|r| journal.append(r))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    let stats = journal.stats();
    assert_eq!(stats.appends, N);
    assert!(stats.syncs < N, "group commit: {stats:?}");
    assert!(stats.syncs >= 1);
    drop(journal);
    let (_, reopened) = open(dir.path());
    assert_eq!(reopened.len() as u64, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_many_tasks_are_all_readable_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let journal = Arc::new(journal);
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let journal = journal.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    journal
                        .append(&record(&format!("t{task}-{i}"), i))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(journal.stats().appends, 200);
    drop(Arc::into_inner(journal).unwrap());
    let (_, records) = open(dir.path());
    assert_eq!(records.len(), 200);
    assert!(records.iter().any(|r| r.id == "t7-24"));
}

#[tokio::test]
async fn many_updates_of_the_same_ids_keep_the_file_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        compact_min_bytes: 16 * 1024,
        ..options_at("2026-11-23T13:00:00Z")
    };
    let (journal, _) = Journal::open_with(dir.path(), options.clone()).unwrap();
    let mut seq = 0;
    for _ in 0..300 {
        for id in ["a", "b", "c", "d", "e"] {
            seq += 1;
            journal.append(&record(id, seq)).await.unwrap();
        }
    }
    let stats = journal.stats();
    let on_disk = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
    assert_eq!(stats.file_bytes, on_disk);
    assert!(stats.compactions >= 1, "{stats:?}");
    // 1500 lines of ~300 bytes would be ~450 KiB; compaction keeps it near the threshold.
    assert!(on_disk <= 32 * 1024, "{on_disk} bytes");
    drop(journal);
    let (_, records) = Journal::open_with(dir.path(), options).unwrap();
    assert_eq!(ids(&records), ["a", "b", "c", "d", "e"]);
    assert_eq!(records[4].seq, seq);
}

#[tokio::test]
async fn retention_drops_old_finished_records_but_keeps_unresolved_unknowns() {
    let dir = tempfile::tempdir().unwrap();
    let old = "2026-10-01T12:00:00.000Z";
    let mut finished = record("old-approved", 1);
    finished.updated_at = old.to_owned();
    let mut unresolved = record("old-unknown", 2);
    (unresolved.state, unresolved.updated_at) = (State::Unknown, old.to_owned());
    let mut resolved = unresolved.clone();
    resolved.id = "old-resolved".to_owned();
    resolved.resolution = Some(Resolution {
        outcome: ResolvedAs::NotCharged,
        note: None,
        till: "till-1".to_owned(),
        by_role: ResolvedBy::Cashier,
        at: old.to_owned(),
    });
    let mut edge = record("29-days", 3);
    edge.updated_at = "2026-10-25T12:00:00.000Z".to_owned();
    let (journal, _) = open(dir.path());
    for r in [
        &finished,
        &unresolved,
        &resolved,
        &edge,
        &record("recent", 4),
    ] {
        journal.append(r).await.unwrap();
    }
    drop(journal);

    let (journal, records) = open(dir.path());
    assert_eq!(ids(&records), ["old-unknown", "29-days", "recent"]);
    drop(journal);
    let on_disk = Journal::read(dir.path()).unwrap();
    assert_eq!(
        ids(&on_disk),
        ["old-unknown", "29-days", "recent"],
        "compacted at open"
    );
}

/// A running journal applies retention to its live set (every `prune_period`, here 1 s):
/// expired records stop counting as live, so a file of one line per id, which never reaches
/// the compaction ratio otherwise, compacts down to what is kept.
#[tokio::test]
async fn a_running_journal_drops_expired_records_and_compacts_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        retention: std::time::Duration::from_secs(1),
        compact_min_bytes: 16 * 1024,
        ..options_at("2026-11-23T13:00:00Z")
    };
    let (journal, _) = Journal::open_with(dir.path(), options.clone()).unwrap();
    for seq in 1..=200 {
        journal
            .append(&record(&format!("old-{seq}"), seq))
            .await
            .unwrap();
    }
    assert_eq!(journal.stats().compactions, 0, "one line per id: all live");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut unresolved = record("unknown", 201);
    unresolved.state = State::Unknown;
    journal.append(&unresolved).await.unwrap();
    // The writer compacts after acknowledging; the next append is answered after that.
    unresolved.seq = 202;
    journal.append(&unresolved).await.unwrap();
    let stats = journal.stats();
    assert_eq!(stats.compactions, 1, "{stats:?}");
    assert!(stats.file_bytes < 1024, "{stats:?}");
    drop(journal);
    assert_eq!(ids(&Journal::read(dir.path()).unwrap()), ["unknown"]);
}

#[tokio::test]
async fn a_stale_compaction_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    journal.append(&record("a", 1)).await.unwrap();
    drop(journal);
    // A crash mid-compaction leaves a half-written temp file and the old journal intact.
    std::fs::write(dir.path().join(TMP_NAME), b"0000 half a compac").unwrap();
    append_file(dir.path(), b"torn");
    let (journal, records) = open(dir.path());
    assert_eq!(ids(&records), ["a"]);
    journal.append(&record("b", 2)).await.unwrap();
    drop(journal);
    assert_eq!(ids(&Journal::read(dir.path()).unwrap()), ["a", "b"]);
}

#[tokio::test]
async fn failed_compaction_leaves_the_old_file_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    journal.append(&record("a", 1)).await.unwrap();
    journal.append(&record("a", 2)).await.unwrap();
    drop(journal);
    append_file(dir.path(), b"torn");
    // The temp path is a directory, so the rewrite cannot even start.
    std::fs::create_dir(dir.path().join(TMP_NAME)).unwrap();
    let ((journal, records), logs) = logged(|| open(dir.path()));
    assert!(
        logs.contains("journal: compaction at open failed"),
        "{logs}"
    );
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].seq, 2);
    journal.append(&record("b", 3)).await.unwrap();
    drop(journal);
    let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
    assert_eq!(
        text.lines().count(),
        3,
        "old file kept, torn tail cut: {text}"
    );
    assert_eq!(ids(&Journal::read(dir.path()).unwrap()), ["a", "b"]);
}

#[tokio::test]
async fn a_second_agent_cannot_open_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let err = Journal::open(dir.path())
        .err()
        .expect("second open refused");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(
        err.to_string()
            .contains("in use by another caisse-ap-relay"),
        "{err}"
    );
    journal.append(&record("a", 1)).await.unwrap();
    assert_eq!(
        ids(&Journal::read(dir.path()).unwrap()),
        ["a"],
        "read needs no lock"
    );
    drop(journal);
    let (_, records) = open(dir.path());
    assert_eq!(ids(&records), ["a"]);
}

#[test]
fn open_fails_when_the_data_dir_cannot_exist() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    assert!(Journal::open(&file.join("data")).is_err());
}

/// The journal's name points at /dev/full (writes fail with ENOSPC, like a full disk); then
/// space "returns" when the name points at a real file again.
#[tokio::test]
async fn a_failed_write_is_an_error_and_later_appends_work_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let (journal, records) = open(dir.path());
    assert!(records.is_empty());
    let err = journal.append(&record("lost", 1)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert_eq!(journal.stats().appends, 0);

    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"").unwrap();
    journal.append(&record("kept", 2)).await.unwrap();
    assert_eq!(journal.stats().appends, 1);
    drop(journal);
    assert_eq!(ids(&Journal::read(dir.path()).unwrap()), ["kept"]);
}
