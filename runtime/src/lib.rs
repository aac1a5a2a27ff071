//! The Stratus management runtime: what runs the pure controller of
//! `stratus-core` against the real world.
//!
//! - [`hosts`]: host connections, the management side of the agent protocol
//!   (the gateway): TLS with the management CA, enrollment and hello with
//!   protocol negotiation, heartbeats and VM reports into the controller,
//!   driver calls routed to the right agent, the controller's timers.

pub mod hosts;
