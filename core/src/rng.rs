//! Seeded, tree-structured randomness (`DetRng`). It lives in `stratus-wire`,
//! next to the ids it draws, so crates that must not link the core (the host
//! agent) share the same streams; re-exported here.

pub use stratus_wire::rng::DetRng;
