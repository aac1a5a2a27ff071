//! Criterion benchmarks of the Stratus core live in `benches/`; run them with
//! `cargo bench -p stratus-benches --bench placement` (see BENCHMARKS.md).
