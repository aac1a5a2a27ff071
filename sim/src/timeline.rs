//! Timeline expectations: checked as the run goes (after every event), each
//! remembering the first moment it failed and why.

use crate::engine::Engine;
use crate::scenario::Expectation;
use std::collections::BTreeMap;
use stratus_core::Cloud;
use stratus_core::controller::{Event, EventKind};
use stratus_core::ids::VmId;

#[derive(Clone, Debug)]
enum Watch {
    /// `host_never`: a host.state event into `state` (for this host, or any).
    HostNever { host: Option<String>, state: String },
    /// `peak_allocated_at_most`: polled after every event (O(1)).
    Peak { cluster: usize, memory: bool, max: f64 },
    /// Looked at the end, from events kept here.
    Other,
}

/// The first failure of one expectation: simulated ms and the reason.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FirstFailure {
    pub at_ms: u64,
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Per expectation (same index as the scenario's `expect`).
    watches: Vec<Watch>,
    pub first_failure: Vec<Option<FirstFailure>>,
    /// Peak fraction per watched cluster expectation, and when.
    pub peak: Vec<Option<(f64, u64)>>,
    /// The latest resource-state change per host ("A -> B: reason").
    pub last_resource_change: BTreeMap<String, String>,
    any_peak: bool,
    needs_ev: bool,
}

impl Timeline {
    pub fn new(expect: &[Expectation], cloud: &Cloud) -> Timeline {
        let watches: Vec<Watch> = expect
            .iter()
            .map(|e| match e {
                Expectation::HostNever { host, state } => Watch::HostNever {
                    host: host.clone(),
                    state: state.clone(),
                },
                Expectation::PeakAllocatedAtMost { cluster, resource, max } => {
                    match cloud.inv.clusters.iter().position(|c| &c.name == cluster) {
                        Some(i) => Watch::Peak {
                            cluster: i,
                            memory: resource == "memory",
                            max: *max,
                        },
                        None => Watch::Other,
                    }
                }
                _ => Watch::Other,
            })
            .collect();
        let n = watches.len();
        let needs_ev = expect
            .iter()
            .any(|e| matches!(e, Expectation::HostNever { .. } | Expectation::MaintenanceEndsIn { .. }));
        Timeline {
            needs_ev,
            any_peak: watches.iter().any(|w| matches!(w, Watch::Peak { .. })),
            watches,
            first_failure: vec![None; n],
            peak: vec![None; n],
            last_resource_change: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.any_peak && !self.needs_events()
    }

    /// Whether the engine must keep host events for this timeline.
    pub fn needs_events(&self) -> bool {
        self.needs_ev
    }

    fn fail(&mut self, i: usize, at_ms: u64, detail: String) {
        if self.first_failure[i].is_none() {
            self.first_failure[i] = Some(FirstFailure { at_ms, detail });
        }
    }

    /// After every event: the controller events it produced, and the polls.
    pub fn observe(&mut self, e: &Engine, events: &[Event]) {
        for ev in events {
            if ev.kind == EventKind::HostResourceState {
                self.last_resource_change.insert(ev.subject.clone(), ev.detail.clone());
            }
            if ev.kind != EventKind::HostState {
                continue;
            }
            let to = ev.detail.split_once("-> ").map_or("", |(_, b)| b);
            let to = to.split(':').next().unwrap_or("").trim();
            for i in 0..self.watches.len() {
                if let Watch::HostNever { host, state } = &self.watches[i]
                    && host.as_deref().is_none_or(|h| h == ev.subject)
                    && to.eq_ignore_ascii_case(state)
                {
                    let detail = format!("host {} went {}", ev.subject, ev.detail);
                    self.fail(i, ev.t, detail);
                }
            }
        }
        if self.any_peak {
            self.check(e, &BTreeMap::new());
        }
    }

    /// Polls the O(1) checks (allocation peaks) now.
    pub fn check(&mut self, e: &Engine, _want: &BTreeMap<VmId, bool>) {
        let book = &e.ctl.cloud().book;
        for i in 0..self.watches.len() {
            if let Watch::Peak { cluster, memory, max } = self.watches[i] {
                let agg = &book.cluster[cluster];
                let c = if memory { &agg.mem } else { &agg.cpu };
                let f = c.fraction_with(0);
                if self.peak[i].is_none_or(|(p, _)| f > p) {
                    self.peak[i] = Some((f, e.now));
                }
                if f > max {
                    let detail = format!(
                        "{} allocated {} of {} = {} of capacity, above {max}",
                        if memory { "memory" } else { "cpu" },
                        c.allocated(),
                        c.total,
                        stratus_core::allocator::ratio_beside(f, max)
                    );
                    self.fail(i, e.now, detail);
                }
            }
        }
    }
}
