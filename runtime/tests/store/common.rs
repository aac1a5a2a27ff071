//! Test bodies shared by both backends. Each takes a freshly created, empty store.

use std::collections::HashSet;

use stratus_runtime::store::{GroupCommit, JournalEntry, Snapshot, Store, StoreError};

pub fn entry(seq: u64) -> JournalEntry {
    JournalEntry {
        seq,
        at_ms: 1_700_000_000_000 + seq as i64,
        payload: format!("input-{seq}").into_bytes(),
    }
}

pub fn entries(seqs: std::ops::RangeInclusive<u64>) -> Vec<JournalEntry> {
    seqs.map(entry).collect()
}

pub fn snapshot(seq: u64) -> Snapshot {
    Snapshot {
        seq,
        state_hash: format!("hash-{seq}"),
        taken_at_ms: 1_800_000_000_000 + seq as i64,
        payload: format!("state-after-{seq}").into_bytes(),
    }
}

fn seqs(entries: &[JournalEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Append, last seq, reading back, an empty batch, binary and large payloads, and a batch
/// bigger than one multi-row INSERT chunk.
pub async fn journal_roundtrip(store: &Store) {
    assert_eq!(store.last_seq().await.unwrap(), 0);
    assert!(store.journal_after(0).await.unwrap().is_empty());
    store.append(&[]).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 0);

    store.append(&entries(1..=3)).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 3);
    assert_eq!(store.journal_after(0).await.unwrap(), entries(1..=3));
    assert_eq!(store.journal_after(2).await.unwrap(), entries(3..=3));
    assert!(store.journal_after(3).await.unwrap().is_empty());
    assert!(store.journal_after(u64::MAX).await.unwrap().is_empty());

    let odd = vec![
        JournalEntry {
            seq: 4,
            at_ms: -5,
            payload: Vec::new(),
        },
        JournalEntry {
            seq: 5,
            at_ms: i64::MAX,
            payload: (0..=255u8).collect(),
        },
        JournalEntry {
            seq: 6,
            at_ms: 0,
            payload: vec![0xAB; 1 << 20],
        },
    ];
    store.append(&odd).await.unwrap();
    assert_eq!(store.journal_after(3).await.unwrap(), odd);

    // 1,000 entries: several chunk sizes in one transaction.
    store.append(&entries(7..=1006)).await.unwrap();
    let all = store.journal_after(6).await.unwrap();
    assert_eq!(all, entries(7..=1006));
    assert_eq!(store.last_seq().await.unwrap(), 1006);

    // 3,000 entries: more than one INSERT statement, in one transaction.
    store.append(&entries(1007..=4006)).await.unwrap();
    assert_eq!(store.journal_after(1006).await.unwrap(), entries(1007..=4006));
    assert_eq!(store.last_seq().await.unwrap(), 4006);
}

/// Gaps, duplicates and non-consecutive batches are refused and change nothing.
pub async fn refuses_gaps_and_duplicates(store: &Store) {
    store.append(&entries(1..=2)).await.unwrap();
    let before = store.journal_after(0).await.unwrap();

    let gap = store.append(&entries(4..=5)).await.unwrap_err();
    assert!(
        matches!(gap, StoreError::SeqMismatch { expected: 3, got: 4 }),
        "{gap:?}"
    );
    assert!(gap.to_string().contains("must be 3"), "{gap}");

    let dup = store.append(&entries(2..=3)).await.unwrap_err();
    assert!(
        matches!(dup, StoreError::SeqMismatch { expected: 3, got: 2 }),
        "{dup:?}"
    );

    let holes = store.append(&[entry(3), entry(4), entry(6)]).await.unwrap_err();
    assert!(
        matches!(
            holes,
            StoreError::NotConsecutive {
                index: 2,
                prev: 4,
                next: 6
            }
        ),
        "{holes:?}"
    );

    let repeated = store.append(&[entry(3), entry(3)]).await.unwrap_err();
    assert!(matches!(repeated, StoreError::NotConsecutive { .. }), "{repeated:?}");

    let from_zero = store.append(&[entry(0)]).await.unwrap_err();
    assert!(matches!(from_zero, StoreError::SeqMismatch { .. }), "{from_zero:?}");

    let big_gap = store.append(&entries(4..=3000)).await.unwrap_err();
    assert!(
        matches!(big_gap, StoreError::SeqMismatch { expected: 3, got: 4 }),
        "{big_gap:?}"
    );
    let big_dup = store.append(&entries(2..=3000)).await.unwrap_err();
    assert!(
        matches!(big_dup, StoreError::SeqMismatch { expected: 3, got: 2 }),
        "{big_dup:?}"
    );

    let huge = store.append(&[entry(u64::MAX)]).await.unwrap_err();
    assert!(matches!(huge, StoreError::SeqOutOfRange(u64::MAX)), "{huge:?}");

    assert_eq!(store.journal_after(0).await.unwrap(), before);
    assert_eq!(store.last_seq().await.unwrap(), 2);

    store.append(&entries(3..=4)).await.unwrap();
    assert_eq!(seqs(&store.journal_after(0).await.unwrap()), vec![1, 2, 3, 4]);
}

/// Retention of the newest two snapshots, journal truncation up to the older one, and
/// falling back to the older snapshot plus the journal.
pub async fn snapshots_truncate_and_fall_back(store: &Store) {
    assert!(store.latest_snapshot().await.unwrap().is_none());
    assert!(store.snapshots().await.unwrap().is_empty());
    store.append(&entries(1..=10)).await.unwrap();

    // One snapshot: nothing to fall back to, so the journal is kept whole.
    store.put_snapshot(&snapshot(4)).await.unwrap();
    assert_eq!(store.journal_after(0).await.unwrap().len(), 10);
    assert_eq!(store.latest_snapshot().await.unwrap(), Some(snapshot(4)));

    // Two: the journal up to the older one (4) goes.
    store.put_snapshot(&snapshot(8)).await.unwrap();
    assert_eq!(
        store.snapshots().await.unwrap(),
        vec![(8, "hash-8".into()), (4, "hash-4".into())]
    );
    assert_eq!(
        seqs(&store.journal_after(0).await.unwrap()),
        (5..=10).collect::<Vec<_>>()
    );
    assert_eq!(store.latest_snapshot().await.unwrap(), Some(snapshot(8)));

    // Suppose snapshot 8 is bad: snapshot 4 + the journal after it rebuild everything.
    let fallback = store.load_snapshot(4).await.unwrap().expect("older snapshot kept");
    assert_eq!(fallback, snapshot(4));
    assert_eq!(store.journal_after(fallback.seq).await.unwrap(), entries(5..=10));
    assert_eq!(store.last_seq().await.unwrap(), 10);

    // A third: 4 is dropped, the journal up to 8 goes.
    store.append(&entries(11..=12)).await.unwrap();
    store.put_snapshot(&snapshot(12)).await.unwrap();
    assert_eq!(
        store.snapshots().await.unwrap(),
        vec![(12, "hash-12".into()), (8, "hash-8".into())]
    );
    assert!(store.load_snapshot(4).await.unwrap().is_none());
    assert_eq!(store.journal_after(0).await.unwrap(), entries(9..=12));
    assert_eq!(store.load_snapshot(8).await.unwrap(), Some(snapshot(8)));

    // Going backwards is refused; the same seq replaces.
    let old = store.put_snapshot(&snapshot(10)).await.unwrap_err();
    assert!(
        matches!(old, StoreError::SnapshotOutOfOrder { latest: 12, got: 10 }),
        "{old:?}"
    );
    let mut again = snapshot(12);
    again.state_hash = "hash-12-retaken".into();
    store.put_snapshot(&again).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap(), Some(again));
    assert_eq!(store.snapshots().await.unwrap().len(), 2);
    assert_eq!(store.journal_after(0).await.unwrap(), entries(9..=12));

    // Appends continue after the journal.
    store.append(&entries(13..=13)).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 13);
}

/// A snapshot ahead of the journal (e.g. a restored state) moves `last_seq` forward.
pub async fn snapshot_ahead_of_journal(store: &Store) {
    store.put_snapshot(&snapshot(100)).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 100);
    let err = store.append(&entries(1..=1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SeqMismatch { expected: 101, got: 1 }),
        "{err:?}"
    );
    store.append(&entries(101..=102)).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 102);
    assert_eq!(store.journal_after(100).await.unwrap(), entries(101..=102));
}

/// The key-value table upserts.
pub async fn meta_upsert(store: &Store) {
    assert_eq!(store.get_meta("ca.key").await.unwrap(), None);
    store.put_meta("ca.key", b"first").await.unwrap();
    assert_eq!(store.get_meta("ca.key").await.unwrap().as_deref(), Some(&b"first"[..]));
    store.put_meta("ca.key", &[0, 159, 146, 150]).await.unwrap();
    assert_eq!(store.get_meta("ca.key").await.unwrap(), Some(vec![0, 159, 146, 150]));
    store.put_meta("empty", b"").await.unwrap();
    assert_eq!(store.get_meta("empty").await.unwrap(), Some(Vec::new()));
    store.put_meta("ключ ✓", b"unicode key").await.unwrap();
    assert_eq!(
        store.get_meta("ключ ✓").await.unwrap().as_deref(),
        Some(&b"unicode key"[..])
    );
    assert_eq!(store.get_meta("other").await.unwrap(), None);

    // Listing by prefix: only keys that start with it, by key.
    store.put_meta("agent/b", b"2").await.unwrap();
    store.put_meta("agent/a", b"1").await.unwrap();
    store.put_meta("agents", b"not under agent/").await.unwrap();
    store.put_meta("xagent/c", b"no").await.unwrap();
    assert_eq!(
        store.list_meta("agent/").await.unwrap(),
        vec![
            ("agent/a".to_string(), b"1".to_vec()),
            ("agent/b".to_string(), b"2".to_vec())
        ]
    );
    assert!(store.list_meta("none/").await.unwrap().is_empty());
}

/// Writes a little of everything; `check_written` verifies it after a reopen.
pub async fn write_some(store: &Store) {
    store.append(&entries(1..=5)).await.unwrap();
    store.put_snapshot(&snapshot(3)).await.unwrap();
    store.put_meta("setting", b"on").await.unwrap();
    let group = GroupCommit::spawn(store.clone(), 16);
    assert_eq!(group.append(7, b"via group".to_vec()).await.unwrap(), 6);
}

/// Checks what `write_some` wrote, with `last` the store's last seq by now.
pub async fn check_written(store: &Store, last: u64) {
    assert_eq!(store.last_seq().await.unwrap(), last);
    let journal = store.journal_after(0).await.unwrap();
    assert_eq!(seqs(&journal), (1..=last).collect::<Vec<_>>());
    assert_eq!(journal[..5], entries(1..=5));
    assert_eq!(
        journal[5],
        JournalEntry {
            seq: 6,
            at_ms: 7,
            payload: b"via group".to_vec()
        }
    );
    assert_eq!(store.latest_snapshot().await.unwrap(), Some(snapshot(3)));
    assert_eq!(store.get_meta("setting").await.unwrap(), Some(b"on".to_vec()));
}

pub const PRODUCERS: u64 = 8;
pub const PER_PRODUCER: u64 = 2_000;

fn producer_payload(p: u64, i: u64) -> Vec<u8> {
    format!("producer-{p}-input-{i}").into_bytes()
}

/// 8 concurrent producers × 2,000 appends: every seq 1..=16,000 exactly once, in order,
/// each payload at the seq its producer was told, and fewer transactions than appends.
pub async fn group_commit_many_producers(store: &Store) {
    let group = GroupCommit::spawn(store.clone(), 4096);
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let group = group.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(PER_PRODUCER as usize);
            for i in 0..PER_PRODUCER {
                let seq = group.append(i as i64, producer_payload(p, i)).await.unwrap();
                got.push((seq, p, i));
            }
            got
        }));
    }
    let mut assigned = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        // One producer awaits each append before the next, so its seqs increase.
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assigned.extend(got);
    }
    let total = PRODUCERS * PER_PRODUCER;
    let distinct: HashSet<u64> = assigned.iter().map(|a| a.0).collect();
    assert_eq!(distinct.len() as u64, total, "every seq assigned once");
    assert_eq!(distinct, (1..=total).collect::<HashSet<u64>>());

    let journal = store.journal_after(0).await.unwrap();
    assert_eq!(
        seqs(&journal),
        (1..=total).collect::<Vec<_>>(),
        "stored once each, in order"
    );
    assigned.sort_unstable();
    for ((seq, p, i), e) in assigned.iter().zip(&journal) {
        assert_eq!(e.seq, *seq);
        assert_eq!(e.payload, producer_payload(*p, *i));
        assert_eq!(e.at_ms, *i as i64);
    }

    let stats = group.stats();
    assert_eq!(stats.entries, total);
    assert_eq!(stats.failed_batches, 0);
    assert!(stats.transactions < total, "batches were formed: {stats:?}");
    assert!(stats.largest_batch > 1, "{stats:?}");
    eprintln!(
        "group commit on {}: {total} appends in {} transactions (largest batch {})",
        store.url_kind(),
        stats.transactions,
        stats.largest_batch
    );
}

/// The writer starts after what is stored (journal and snapshot), and resyncs after a
/// batch that failed because someone else appended behind its back.
pub async fn group_commit_resumes_and_resyncs(store: &Store) {
    store.append(&entries(1..=5)).await.unwrap();
    store.put_snapshot(&snapshot(5)).await.unwrap();
    let group = GroupCommit::spawn(store.clone(), 64);
    assert_eq!(group.append(1, b"a".to_vec()).await.unwrap(), 6);

    // A direct append the writer does not know about: its next batch is refused...
    store.append(&entries(7..=7)).await.unwrap();
    let err = group.append(2, b"b".to_vec()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::GroupCommit(e) if matches!(**e, StoreError::SeqMismatch { .. })),
        "{err:?}"
    );
    assert_eq!(group.stats().failed_batches, 1);
    // ...and the one after re-reads the last seq.
    assert_eq!(group.append(3, b"c".to_vec()).await.unwrap(), 8);
    let tail = store.journal_after(5).await.unwrap();
    assert_eq!(seqs(&tail), vec![6, 7, 8]);
    assert_eq!(tail[2].payload, b"c");
}

/// Direct appends racing from several tasks: each either lands or is refused with a seq
/// mismatch, and the journal ends up gapless with every landed entry exactly once.
pub async fn racing_direct_appends(store: &Store) {
    const TASKS: u64 = 4;
    const EACH: u64 = 50;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut landed = 0;
            let mut refused = 0;
            while landed < EACH {
                let seq = store.last_seq().await.unwrap() + 1;
                let e = JournalEntry {
                    seq,
                    at_ms: t as i64,
                    payload: vec![t as u8; 8],
                };
                match store.append(&[e]).await {
                    Ok(()) => landed += 1,
                    Err(StoreError::SeqMismatch { .. }) => refused += 1,
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    let journal = store.journal_after(0).await.unwrap();
    assert_eq!(seqs(&journal), (1..=TASKS * EACH).collect::<Vec<_>>());
    for t in 0..TASKS {
        assert_eq!(journal.iter().filter(|e| e.at_ms == t as i64).count() as u64, EACH);
    }
    eprintln!("racing appends on {}: {refused} refused", store.url_kind());
}
