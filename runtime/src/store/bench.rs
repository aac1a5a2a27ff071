//! A journal throughput benchmark: many producers appending through [`GroupCommit`].

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{GroupCommit, Store, StoreError};

/// The largest batch the benchmark's group commit forms.
const BENCH_MAX_BATCH: usize = 4096;

/// The outcome of [`bench_journal`].
#[derive(Debug, Clone, Serialize)]
pub struct JournalBench {
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// Inputs appended (each acknowledged as durable).
    pub inputs: u64,
    /// Payload bytes per input.
    pub payload_bytes: usize,
    /// Concurrent producer tasks, each appending one input at a time.
    pub producers: usize,
    /// Wall time from the first append to the last acknowledgement, seconds.
    pub elapsed_s: f64,
    /// Durable inputs per second.
    pub inputs_per_s: f64,
    /// Append transactions committed.
    pub transactions: u64,
    /// Inputs per transaction, on average.
    pub mean_batch: f64,
    /// The largest batch committed.
    pub largest_batch: u64,
    /// Median time from `append` to its durable acknowledgement, milliseconds.
    pub p50_ack_ms: f64,
    /// 99th percentile of the same, milliseconds.
    pub p99_ack_ms: f64,
    /// Slowest acknowledgement, milliseconds.
    pub max_ack_ms: f64,
}

/// Opens the store at `url`, appends `inputs` inputs of `payload_bytes` bytes from
/// `producers` concurrent tasks through a [`GroupCommit`], checks they all landed, and
/// reports throughput, batching and acknowledgement latency. The store is closed at the end.
///
/// Must run inside a tokio runtime (a multi-threaded one measures the realistic case).
pub async fn bench_journal(
    url: &str,
    inputs: u64,
    payload_bytes: usize,
    producers: usize,
) -> Result<JournalBench, StoreError> {
    let producers = producers.max(1);
    let store = Store::open(url).await?;
    let start_seq = store.last_seq().await?;
    let group = GroupCommit::spawn(store.clone(), BENCH_MAX_BATCH);

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(producers);
    for p in 0..producers as u64 {
        // Spread the inputs evenly; the first `inputs % producers` producers take one more.
        let count = inputs / producers as u64 + u64::from(p < inputs % producers as u64);
        let group = group.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count as usize);
            for i in 0..count {
                let mut payload = vec![0u8; payload_bytes];
                let tag = (p << 40 | i).to_le_bytes();
                let n = tag.len().min(payload_bytes);
                payload[..n].copy_from_slice(&tag[..n]);
                let t = Instant::now();
                group.append(now_ms(), payload).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(inputs as usize);
    for task in tasks {
        let done = task.await.map_err(|_| StoreError::WriterGone)?;
        latencies.extend(done?);
    }
    let elapsed = started.elapsed();
    let stats = group.stats();
    drop(group);

    let end_seq = store.last_seq().await?;
    store.close().await;
    if end_seq != start_seq + inputs {
        return Err(StoreError::Corrupt(format!(
            "benchmark appended {inputs} inputs after seq {start_seq} but the store ends at seq {end_seq}"
        )));
    }

    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |&d| ms(d))
    };
    let elapsed_s = elapsed.as_secs_f64();
    Ok(JournalBench {
        backend: store.url_kind(),
        inputs,
        payload_bytes,
        producers,
        elapsed_s,
        inputs_per_s: if elapsed_s > 0.0 {
            inputs as f64 / elapsed_s
        } else {
            0.0
        },
        transactions: stats.transactions,
        mean_batch: if stats.transactions > 0 {
            stats.entries as f64 / stats.transactions as f64
        } else {
            0.0
        },
        largest_batch: stats.largest_batch,
        p50_ack_ms: pct(0.50),
        p99_ack_ms: pct(0.99),
        max_ack_ms: latencies.last().map_or(0.0, |&d| ms(d)),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
