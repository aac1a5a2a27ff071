//! Validation of operator actions and of the HA and host expectations.

use super::model::{Action, Expectation, Scenario};
use super::validate::{Defined, R};
use super::{FieldPath, Problem};
use stratus_core::inventory::{HostStatus, ResourceState};
use stratus_core::settings::{ScopeKind, lookup_def};

pub(crate) fn validate_actions_and_expectations(s: &Scenario, def: &mut Defined, root: &FieldPath) -> R {
    let end = s.scenario.duration;
    for (i, a) in s.actions.iter().enumerate() {
        let at = root.key("actions").idx(i);
        action(def, a, &at)?;
        let when = a.at();
        if when > end {
            return Err(Problem::new(
                &at.key("at"),
                format!("{when} is after the end of the run ({end})"),
            ));
        }
    }
    for (i, t) in s.triggers.iter().enumerate() {
        let at = root.key("triggers").idx(i);
        trigger(def, t, &at)?;
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
            Expectation::HostNever { host, state } => {
                if let Some(h) = host {
                    def.known("host", h, &at.key("host"))?;
                }
                host_state(state, &at.key("state"))?;
            }
            Expectation::PeakAllocatedAtMost { cluster, resource, max } => {
                def.known("cluster", cluster, &at.key("cluster"))?;
                resource_name(resource, &at.key("resource"))?;
                if !(max.is_finite() && *max > 0.0) {
                    return Err(Problem::new(
                        &at.key("max"),
                        format!("must be a positive fraction, got {max}"),
                    ));
                }
            }
            Expectation::MaintenanceEndsIn { host, states } => {
                def.known("host", host, &at.key("host"))?;
                if states.is_empty() {
                    return Err(Problem::new(&at.key("states"), "name at least one resource state"));
                }
                for (k, st) in states.iter().enumerate() {
                    resource_state(st, &at.key("states").idx(k))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn host_state(state: &str, at: &FieldPath) -> R {
    if HostStatus::parse(state).is_none() {
        let known: Vec<&str> = HostStatus::ALL.iter().map(|s| s.as_str()).collect();
        return Err(Problem::new(
            at,
            format!("unknown host state '{state}' (known: {})", known.join(", ")),
        ));
    }
    Ok(())
}

fn resource_state(state: &str, at: &FieldPath) -> R {
    if ResourceState::parse(state).is_none() {
        let known: Vec<&str> = ResourceState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(Problem::new(
            at,
            format!("unknown resource state '{state}' (known: {})", known.join(", ")),
        ));
    }
    Ok(())
}

fn resource_name(resource: &str, at: &FieldPath) -> R {
    if resource != "cpu" && resource != "memory" {
        return Err(Problem::new(
            at,
            format!("unknown resource '{resource}' (known: cpu, memory)"),
        ));
    }
    Ok(())
}

/// An operator action's names and values (scheduled or triggered).
fn action(def: &mut Defined, a: &Action, at: &FieldPath) -> R {
    match a {
        Action::PrepareMaintenance { host, .. }
        | Action::CancelMaintenance { host, .. }
        | Action::DisableHost { host, .. }
        | Action::EnableHost { host, .. }
        | Action::RemoveHost { host, .. } => def.known("host", host, &at.key("host")),
        Action::DisableCluster { cluster, .. } | Action::EnableCluster { cluster, .. } => {
            def.known("cluster", cluster, &at.key("cluster"))
        }
        Action::RollingMaintenance {
            cluster, down_hosts, ..
        } => {
            def.known("cluster", cluster, &at.key("cluster"))?;
            match down_hosts.as_deref() {
                None | Some("skip") | Some("wait") => Ok(()),
                Some(other) => Err(Problem::new(
                    &at.key("down_hosts"),
                    format!("unknown choice '{other}' (known: skip, wait)"),
                )),
            }
        }
        Action::SetSetting {
            name,
            value,
            cluster,
            zone,
            ..
        } => {
            if let Some(c) = cluster {
                def.known("cluster", c, &at.key("cluster"))?;
            }
            if let Some(z) = zone {
                def.known("zone", z, &at.key("zone"))?;
            }
            if cluster.is_some() && zone.is_some() {
                return Err(Problem::new(
                    at,
                    "give cluster or zone (or neither, for global), not both",
                ));
            }
            let scope = if cluster.is_some() {
                ScopeKind::Cluster
            } else if zone.is_some() {
                ScopeKind::Zone
            } else {
                ScopeKind::Global
            };
            let map = std::collections::BTreeMap::from([(name.clone(), value.clone())]);
            let entries = super::validate::settings(&map, &at.key("value"), ScopeKind::Global)?;
            if let Some(d) = entries.first().and_then(|e| lookup_def(&e.name))
                && scope != ScopeKind::Global
                && d.scope != scope
            {
                return Err(Problem::new(
                    &at.key("name"),
                    format!(
                        "setting '{}' cannot be set per {} (its scope is {})",
                        d.name,
                        scope.as_str(),
                        d.scope.as_str()
                    ),
                ));
            }
            Ok(())
        }
        Action::AddHosts {
            cluster,
            prefix,
            count,
            sockets,
            cores,
            mhz,
            memory_gib,
            ..
        } => {
            def.known("cluster", cluster, &at.key("cluster"))?;
            for (v, k) in [
                (*count, "count"),
                (*sockets, "sockets"),
                (*cores, "cores"),
                (*mhz, "mhz"),
            ] {
                if v == 0 {
                    return Err(Problem::new(&at.key(k), "must be above 0"));
                }
            }
            if *memory_gib == 0 {
                return Err(Problem::new(&at.key("memory_gib"), "must be above 0"));
            }
            if prefix.is_empty() {
                return Err(Problem::new(&at.key("prefix"), "must not be empty"));
            }
            Ok(())
        }
        Action::RegisterOffering {
            name,
            cpu,
            mhz,
            memory_mb,
            ..
        } => {
            if *cpu == 0 || *mhz == 0 || *memory_mb == 0 {
                return Err(Problem::new(at, "cpu, mhz and memory_mb must be above 0"));
            }
            def.add_late("offering", name, &at.key("name"))
        }
    }
}

fn trigger(def: &mut Defined, t: &super::Trigger, at: &FieldPath) -> R {
    let w = &t.when;
    let wat = at.key("when");
    if let Some(h) = &w.host {
        def.known("host", h, &wat.key("host"))?;
    }
    if let Some(st) = &w.state {
        host_state(st, &wat.key("state"))?;
    }
    if let Some(st) = &w.resource_state {
        resource_state(st, &wat.key("resource_state"))?;
    }
    let kinds = usize::from(w.state.is_some())
        + usize::from(w.resource_state.is_some())
        + usize::from(w.job.is_some())
        + usize::from(w.vm_state.is_some());
    if kinds != 1 {
        return Err(Problem::new(
            &wat,
            "say one moment: host + state, host + resource_state, job (+ on, vm) or vm + vm_state",
        ));
    }
    if (w.state.is_some() || w.resource_state.is_some()) && w.host.is_none() {
        return Err(Problem::new(&wat.key("host"), "a host state moment needs the host"));
    }
    if let Some(job) = &w.job {
        if stratus_core::controller::Command::parse(job).is_none() {
            return Err(Problem::new(
                &wat.key("job"),
                format!("unknown API command '{job}' (e.g. deployVirtualMachine, migrateVirtualMachine)"),
            ));
        }
        match w.on.as_deref() {
            None | Some("start") | Some("end") | Some("fail") => {}
            Some(o) => {
                return Err(Problem::new(
                    &wat.key("on"),
                    format!("unknown '{o}' (known: start, end, fail)"),
                ));
            }
        }
    } else if w.on.is_some() {
        return Err(Problem::new(&wat.key("on"), "`on` goes with `job`"));
    }
    if let Some(st) = &w.vm_state {
        if w.vm.is_none() {
            return Err(Problem::new(&wat.key("vm"), "a VM state moment needs the VM's name"));
        }
        const VM_STATES: [&str; 9] = [
            "Stopped",
            "Starting",
            "Running",
            "Stopping",
            "Migrating",
            "Destroyed",
            "Expunging",
            "Error",
            "Unknown",
        ];
        if !VM_STATES.contains(&st.as_str()) {
            return Err(Problem::new(
                &wat.key("vm_state"),
                format!("unknown VM state '{st}' (known: {})", VM_STATES.join(", ")),
            ));
        }
    }
    match (&t.fault, &t.action) {
        (Some(f), None) => super::validate::fault(def, &f.select, &f.fault, &at.key("fault")),
        (None, Some(a)) => action(def, a, &at.key("action")),
        _ => Err(Problem::new(at, "a trigger starts exactly one fault or one action")),
    }
}
