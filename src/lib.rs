//! The `stratus` binary's library half: the management server assembled from
//! its crates (`serve`), so integration tests can run it in-process.

pub mod serve;
