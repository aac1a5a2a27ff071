//! The Stratus host agent, host side only: it links the wire vocabulary
//! (`stratus-wire`), the driver traits and the watchdog (`stratus-drivers`)
//! and the link (`stratus-link`: TLS, token format, framing), never the
//! core, the management runtime or the simulator.
//!
//! - [`agent`]: the agent loop: enroll/hello with protocol negotiation,
//!   heartbeats, exactly-once calls, storage leases and the isolation
//!   watchdog, reconnect backoff, the credentials file.
//! - [`hostmon`]: the host monitor (`stratus hostmon`): the lease writer and
//!   the watchdog in a process of their own, so they outlive the agent.
//! - [`stamp`]: the stamp files linking the agent and the monitor.
//!
//! A backend is anything implementing the four driver traits ([`Backend`]):
//! the simulated host of `stratus agent --sim` lives in `stratus-sim`
//! (feature `agent`), the KVM backend will live with the drivers. The
//! management side of the protocol is `stratus_runtime::hosts`.
//!
//! See README.md in this crate for the protocol and its guarantees.

pub mod agent;
pub mod hostmon;
pub mod stamp;

pub use agent::{
    Agent, AgentConfig, AgentError, AgentStats, Backend, CredentialStore, Credentials, Hooks, HostMonitorLink,
};
pub use stratus_link::net::{Connector, TokioConnector};
