//! Journal throughput through group commit: 200,000 durable inputs of 200 bytes from 64
//! producers, on a temporary SQLite file (or on the store URL given as the only argument,
//! which gets the inputs appended). Prints the result as JSON.
//!
//! `cargo run --release -p stratus-runtime --example journal_bench [-- STORE_URL]`

use stratus_runtime::store::bench_journal;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => format!("sqlite://{}", dir.path().join("journal-bench.db").display()),
    };
    let result = bench_journal(&url, 200_000, 200, 64).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
