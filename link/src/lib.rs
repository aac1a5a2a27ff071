//! What both ends of the host link need, and nothing else: the host agent
//! (`stratus-agent`) and the management side (`stratus-runtime`'s `hosts`)
//! both depend on it, so neither has to link the other.
//!
//! - [`tls`]: the rustls provider, the pinned-CA verifier and the agent's
//!   client configuration, the server configuration from a certificate
//!   chain, fingerprints and constant-time comparison.
//! - [`token`]: the enrollment token format (`stratus1.<ca-sha256>.<secret>`).
//! - [`net`]: socket traits (tokio TCP here, turmoil in tests) and bounded
//!   line framing for the protocol of `stratus_wire::protocol`.
//!
//! Making the management CA (rcgen) and secrets is the management side's
//! business and lives in `stratus-runtime`; the agent never links it.

pub mod net;
pub mod tls;
pub mod token;

/// The TLS crates both ends build on, re-exported so they agree on versions.
pub use rustls;
pub use tokio_rustls;
