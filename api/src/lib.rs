//! Foundations of Stratus's CloudStack-compatible HTTP API: request signing
//! ([`sign`]), request parameters ([`params`]), response envelopes in JSON and
//! XML ([`render`]), CloudStack error codes ([`errors`]) and dates ([`dates`]).
//! Pure functions only; the server lives elsewhere.

pub mod dates;
pub mod errors;
pub mod params;
pub mod render;
pub mod sign;
