//! Validation of operator actions and of the HA and host expectations.

use super::model::{Action, Expectation, Scenario};
use super::validate::{Defined, R};
use super::{FieldPath, Problem};
use stratus_core::inventory::{HostStatus, ResourceState};

pub(crate) fn validate_actions_and_expectations(s: &Scenario, def: &mut Defined, root: &FieldPath) -> R {
    let end = s.scenario.duration;
    for (i, a) in s.actions.iter().enumerate() {
        let at = root.key("actions").idx(i);
        let when = match a {
            Action::PrepareMaintenance { at: t, host } | Action::CancelMaintenance { at: t, host } => {
                def.known("host", host, &at.key("host"))?;
                *t
            }
            Action::RollingMaintenance { at: t, cluster, .. } => {
                def.known("cluster", cluster, &at.key("cluster"))?;
                *t
            }
        };
        if when > end {
            return Err(Problem::new(
                &at.key("at"),
                format!("{when} is after the end of the run ({end})"),
            ));
        }
    }
    for (i, e) in s.expect.iter().enumerate() {
        let at = root.key("expect").idx(i);
        match e {
            Expectation::HaDetectionWithin { seconds } | Expectation::HaRecoveryWithin { seconds }
                if !(seconds.is_finite() && *seconds > 0.0) =>
            {
                return Err(Problem::new(
                    &at.key("seconds"),
                    format!("must be positive, got {seconds}"),
                ));
            }
            Expectation::HostState { host, state } => {
                def.known("host", host, &at.key("host"))?;
                if HostStatus::parse(state).is_none() {
                    let known: Vec<&str> = HostStatus::ALL.iter().map(|s| s.as_str()).collect();
                    return Err(Problem::new(
                        &at.key("state"),
                        format!("unknown host state '{state}' (known: {})", known.join(", ")),
                    ));
                }
            }
            Expectation::HostResourceState { host, state } => {
                def.known("host", host, &at.key("host"))?;
                if ResourceState::parse(state).is_none() {
                    let known: Vec<&str> = ResourceState::ALL.iter().map(|s| s.as_str()).collect();
                    return Err(Problem::new(
                        &at.key("state"),
                        format!("unknown resource state '{state}' (known: {})", known.join(", ")),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
