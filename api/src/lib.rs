//! Stratus's CloudStack-compatible HTTP API: request signing ([`sign`]),
//! parameters ([`params`]), envelopes in JSON and XML ([`render`]), error
//! codes ([`errors`]), dates ([`dates`]); and the server on top of them:
//! authentication ([`auth`]), callers and visibility ([`caller`]), the
//! command table ([`registry`], [`cmds`]), response objects ([`views`]) and
//! the HTTP pipeline ([`server`]).

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod caller;
pub mod cmds;
pub mod dates;
pub mod errors;
pub mod metrics;
pub mod ostypes;
pub mod params;
pub mod registry;
pub mod render;
pub mod secstorage;
pub mod server;
pub mod sessions;
pub mod sign;
pub mod views;
pub mod whatif_html;

pub use api::{Api, ApiConfig, SimControl};
