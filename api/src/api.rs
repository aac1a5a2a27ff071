//! The API's shared state: the gateway (one durable controller), sessions,
//! the simulated fleet's control hooks and request metrics. Reads go to the
//! controller's state; changes go in as inputs and are answered once durable.

use crate::caller::Caller;
use crate::errors::ApiError;
use crate::metrics::Metrics;
use crate::sessions::Sessions;
use std::sync::Arc;
use stratus_core::controller::admin::{AdminChange, Created};
use stratus_core::controller::{Controller, Input, JobId, Reply, Request};
use stratus_core::error::CoreError;
use stratus_core::ids::HostId;
use stratus_runtime::hosts::Gateway;

/// What the API may ask of simulated hosts (implemented by the binary over
/// the simulator's fleet, so this crate does not depend on the simulator).
pub trait SimControl: Send + Sync {
    /// A Simulator host was added to the inventory: start its agent.
    fn host_added(&self, host: HostId, token: String) -> Result<(), String>;
    /// The inventory grew (a pool, cluster, ...): simulated hosts learn it.
    fn sync(&self);
    /// A Simulator host was deleted (deleteHost): stop its agent, take it out
    /// of the simulated world.
    fn host_removed(&self, _host: HostId) {}
    /// configureSimulator: a fault by name with its parameters.
    fn inject(&self, fault: &serde_json::Value) -> Result<String, String>;
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `cloud-stack-version` in XML answers.
    pub version: String,
    /// Idle session lifetime, seconds (login's `timeout`).
    pub session_timeout_s: u64,
    /// Largest accepted query string / form body, bytes.
    pub max_request_bytes: usize,
    /// Image stores this server has mounted (where template downloads go).
    pub secondary_mounts: Vec<crate::secstorage::SecondaryMount>,
    /// Size and time limits of one template download.
    pub download_limits: stratus_runtime::download::Limits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            version: "4.19.1.0".into(),
            session_timeout_s: 1800,
            max_request_bytes: 1 << 20,
            secondary_mounts: Vec::new(),
            download_limits: stratus_runtime::download::Limits::default(),
        }
    }
}

pub struct Api {
    pub gw: Gateway,
    pub sessions: Sessions,
    pub sim: Option<Arc<dyn SimControl>>,
    pub metrics: Metrics,
    pub config: ApiConfig,
    /// Identifies this server in `managementserverid`.
    pub server_id: uuid::Uuid,
    /// Held while an account's default network is created (one per account).
    pub(crate) default_networks: tokio::sync::Mutex<()>,
    /// Template downloads running on this server (`secstorage`).
    pub downloads: Arc<crate::secstorage::Downloads>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Api({})", self.server_id)
    }
}

impl Api {
    pub fn new(gw: Gateway, sim: Option<Arc<dyn SimControl>>, config: ApiConfig) -> Api {
        Api {
            gw,
            sessions: Sessions::default(),
            sim,
            metrics: Metrics::default(),
            config,
            server_id: {
                let mut b = [0u8; 16];
                getrandom::fill(&mut b).expect("the OS random source works");
                uuid::Builder::from_random_bytes(b).into_uuid()
            },
            default_networks: tokio::sync::Mutex::new(()),
            downloads: Arc::default(),
        }
    }

    /// Reads the controller's current state.
    pub fn read<R>(&self, f: impl FnOnce(&Controller) -> R) -> R {
        self.gw.with_controller(f)
    }

    /// Applies an admin change; answers once it is durable.
    pub async fn admin(&self, caller: Option<&Caller>, change: AdminChange) -> Result<Created, ApiError> {
        let grows = matches!(
            change,
            AdminChange::CreatePool { .. } | AdminChange::AddCluster { .. } | AdminChange::CreateZone { .. }
        );
        let input = Input::Admin {
            change,
            by: caller.map(|c| c.user),
        };
        match self.gw.input(input).await {
            Ok(Reply::Created(r)) => {
                if grows
                    && r.is_ok()
                    && let Some(sim) = &self.sim
                {
                    sim.sync();
                }
                r.map_err(core_error)
            }
            Ok(_) => Err(ApiError::internal("unexpected reply to an admin change")),
            Err(_) => Err(stopped()),
        }
    }

    /// Submits an async job; the job id comes back once the request is durable.
    pub async fn submit(&self, caller: &Caller, request: Request) -> Result<JobId, ApiError> {
        let input = Input::UserRequest {
            request,
            user: caller.user,
        };
        match self.gw.input(input).await {
            Ok(Reply::Job(r)) => r.map_err(core_error),
            Ok(_) => Err(ApiError::internal("unexpected reply to a request")),
            Err(_) => Err(stopped()),
        }
    }

    /// Changes a setting (updateConfiguration).
    pub async fn input_done(&self, input: Input) -> Result<(), ApiError> {
        match self.gw.input(input).await {
            Ok(Reply::Done(r)) => r.map_err(core_error),
            Ok(_) => Err(ApiError::internal("unexpected reply")),
            Err(_) => Err(stopped()),
        }
    }
}

fn stopped() -> ApiError {
    ApiError::resource_unavailable("the management server is shutting down")
}

/// A core refusal in CloudStack's terms.
pub fn core_error(e: CoreError) -> ApiError {
    let (code, cs) = e.cloudstack_codes();
    ApiError::new(code, cs, e.to_string())
}
