//! The runner's side of the scenario language's stories: faults on many
//! hosts or pools at once (selectors), and triggers that start a fault or an
//! action when a host, job or VM reaches a moment.

use crate::runner::Runner;
use crate::scenario::{Fault, Select, When};
use stratus_core::controller::{Event, EventKind};
use stratus_core::ids::VmId;
use stratus_core::inventory::PoolScope;

/// `"Up -> Alert: missed pings"` → `"Alert"`.
fn new_state(detail: &str) -> &str {
    let after = detail.split_once("-> ").map_or(detail, |(_, b)| b);
    after.split(':').next().unwrap_or(after).trim()
}

/// Does this controller event bring the moment `w` waits for?
fn matches(w: &When, e: &Event) -> bool {
    let host_is = |h: &Option<String>| h.as_deref().is_none_or(|h| h == e.subject);
    if let Some(st) = &w.state {
        return e.kind == EventKind::HostState && host_is(&w.host) && new_state(&e.detail).eq_ignore_ascii_case(st);
    }
    if let Some(st) = &w.resource_state {
        if st.eq_ignore_ascii_case("PrepareForMaintenance") {
            // The plan is recorded the moment the host enters PrepareForMaintenance.
            return e.kind == EventKind::MaintenancePlan && host_is(&w.host);
        }
        return e.kind == EventKind::HostResourceState
            && host_is(&w.host)
            && new_state(&e.detail).eq_ignore_ascii_case(st);
    }
    if let Some(job) = &w.job {
        let vm_ok = w.vm.as_deref().is_none_or(|v| v == e.subject);
        return vm_ok
            && match w.on.as_deref().unwrap_or("start") {
                "start" => e.kind == EventKind::JobSubmit && e.detail == *job,
                "end" => {
                    (e.kind == EventKind::JobDone && e.detail == *job)
                        || (e.kind == EventKind::JobFail && e.detail.starts_with(&format!("{job}:")))
                }
                _ => e.kind == EventKind::JobFail && e.detail.starts_with(&format!("{job}:")),
            };
    }
    false
}

impl Runner {
    /// After every engine event: triggers, timeline expectations, samples.
    pub(crate) fn after_event(&mut self) {
        let events = match self.engine.watch.as_mut() {
            Some(w) if !w.is_empty() => std::mem::take(w),
            _ => Vec::new(),
        };
        if !self.fired.is_empty() {
            self.check_triggers(&events);
        }
        if !self.timeline.is_empty() {
            self.timeline.observe(&self.engine, &events);
        }
        self.series.maybe_sample(&self.engine);
    }

    fn check_triggers(&mut self, events: &[Event]) {
        let now = self.engine.now;
        for i in 0..self.fired.len() {
            if self.fired[i] && !self.scenario.triggers[i].repeat {
                continue;
            }
            let t = self.scenario.triggers[i].clone();
            let hit = if let (Some(vm), Some(st)) = (&t.when.vm, &t.when.vm_state) {
                // Polled: VM states are not all events. Resolved by name once seen.
                self.vm_in_state(vm, st) && !self.fired[i]
            } else {
                events.iter().any(|e| matches(&t.when, e))
            };
            if hit {
                self.fired[i] = true;
                let delay = t.delay.map_or(0, |d| d.ms);
                let what = describe_trigger(&t);
                self.engine.log("trigger", &what, &format!("fires in {} ms", delay));
                self.at_triggered(now + delay, i);
            }
        }
    }

    fn vm_in_state(&mut self, name: &str, state: &str) -> bool {
        let id: Option<VmId> = self
            .want_running
            .keys()
            .copied()
            .find(|id| self.engine.ctl.cloud().vm(*id).is_some_and(|v| v.name == name));
        id.and_then(|id| self.engine.ctl.cloud().vm(id))
            .is_some_and(|v| v.state.as_str().eq_ignore_ascii_case(state))
    }

    /// The trigger's fault or action happens now.
    pub(crate) fn fire(&mut self, i: usize) {
        let t = self.scenario.triggers[i].clone();
        if let Some(f) = t.fault {
            self.fault_selected(&f.select, f.fault);
        }
        if let Some(a) = t.action {
            self.action(a);
        }
    }

    /// A fault on one host or pool, or on every host or pool a selector names.
    pub(crate) fn fault_selected(&mut self, select: &Select, f: Fault) {
        if select.is_empty() {
            return self.fault(f);
        }
        let mut one = f.clone();
        if one.host_mut().is_some() {
            for host in self.selected_hosts(select) {
                if let Some(h) = one.host_mut() {
                    *h = host;
                }
                self.fault(one.clone());
            }
            return;
        }
        match f {
            Fault::StorageOutage { duration, .. } => {
                for pool in self.selected_pools(select) {
                    self.fault(Fault::StorageOutage { pool, duration });
                }
            }
            other => self.fault(other),
        }
    }

    fn selected_hosts(&self, s: &Select) -> Vec<String> {
        let inv = &self.engine.ctl.cloud().inv;
        // The hosts that use the selected pool: the scope of its storage.
        let pool = s
            .pool
            .as_deref()
            .and_then(|name| inv.pools.iter().find(|p| p.name == name && !p.removed));
        inv.live_hosts()
            .filter(|(i, h)| {
                let uses_pool = pool.is_some_and(|p| match p.scope {
                    PoolScope::Host(ph) => ph == *i,
                    PoolScope::Cluster(c) => h.cluster == c,
                    PoolScope::Zone => h.zone == p.zone,
                });
                s.all
                    || uses_pool
                    || s.cluster.as_deref() == Some(inv.cluster(h.cluster).name.as_str())
                    || s.pod.as_deref() == Some(inv.pod(h.pod).name.as_str())
                    || s.zone.as_deref() == Some(inv.zone(h.zone).name.as_str())
            })
            .map(|(_, h)| h.name.clone())
            .collect()
    }

    fn selected_pools(&self, s: &Select) -> Vec<String> {
        let inv = &self.engine.ctl.cloud().inv;
        inv.pools
            .iter()
            .filter(|p| !p.removed)
            .filter(|p| match p.scope {
                PoolScope::Host(_) => false,
                PoolScope::Cluster(c) => {
                    let cl = inv.cluster(c);
                    s.all
                        || s.cluster.as_deref() == Some(cl.name.as_str())
                        || s.pod.as_deref() == Some(inv.pod(cl.pod).name.as_str())
                        || s.zone.as_deref() == Some(inv.zone(p.zone).name.as_str())
                }
                PoolScope::Zone => s.all || s.zone.as_deref() == Some(inv.zone(p.zone).name.as_str()),
            })
            .map(|p| p.name.clone())
            .collect()
    }

    /// Hosts the world does not know yet (added mid-run) join it.
    pub(crate) fn sync_world(&mut self) {
        let e = &mut self.engine;
        e.world.sync_inventory(e.ctl.cloud());
    }
}

/// `when host c1-h2 resource_state PrepareForMaintenance: host_crash c1-h3`.
pub(crate) fn describe_trigger(t: &crate::scenario::Trigger) -> String {
    let what = match (&t.fault, &t.action) {
        (Some(f), _) => crate::scenario::describe(&f.fault),
        (None, Some(a)) => crate::scenario::describe(a),
        _ => String::new(),
    };
    format!("when {}: {what}", crate::scenario::describe(&t.when))
}
