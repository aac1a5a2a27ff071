//! The Stratus host agent and the management side of its protocol.
//!
//! - [`protocol`]: versioned JSON-lines messages and the wire form of driver calls.
//! - [`tls`]: the management CA, enrollment tokens, the pinned-CA verifier.
//! - [`net`]: socket traits (tokio TCP here; turmoil in tests) and line framing.
//! - [`agent`]: the agent loop (enroll/hello, heartbeats, exactly-once calls, leases, backoff).
//! - [`gateway`]: the management side (authentication, routing, controller I/O).
//! - [`sim_host`]: a one-host simulated backend for `stratus agent --sim`.
//!
//! See README.md in this crate for the protocol and its guarantees.

pub mod agent;
pub mod gateway;
pub mod net;
pub mod protocol;
pub mod sim_host;
pub mod tls;

pub use agent::{Agent, AgentConfig, AgentError, AgentStats, Backend, CredentialStore, Credentials, Hooks};
pub use gateway::{Gateway, GatewayConfig, GatewayStats};
