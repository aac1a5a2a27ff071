//! A management-server restart: the controller recovered from the journal
//! forgets the calls it had in flight and settles every saga (unwind, roll
//! forward, or hold the VM Unknown until a host reports). A host whose link
//! broke and came back settles the domain calls it never answered the same way.

use super::saga::{Mode, Step};
use super::*;

impl Controller {
    /// The management server crashed and restarted: pending calls are forgotten
    /// and every saga in flight unwinds from its persisted log.
    pub fn restart(&mut self, now: Millis) {
        self.tick(now);
        self.event(
            EventKind::Restart,
            "management-server",
            format!("{} sagas in flight unwind", self.sagas.len()),
        );
        self.ops.clear();
        self.probe_ops.clear();
        self.forget_cleanup_calls();
        self.copy_ops.clear();
        self.out.clear();
        self.after_restart_hosts();
        self.parked.clear();
        self.copies.retain(|_, c| *c == Copy_::Ready);
        let ids: Vec<SagaId> = self.sagas.keys().copied().collect();
        for sid in &ids {
            let s = self.sagas.get_mut(sid).expect("listed");
            let doubt = matches!(s.pending, Some((_, Some(step), _)) if step.starts_a_domain());
            let lost_snapshot = match s.pending {
                Some((_, Some(Step::TakeSnapshot { snapshot, .. }), _)) => Some(snapshot),
                _ => None,
            };
            // The call in flight may have happened (a volume created, a NIC
            // plugged, a domain defined; an undo done). A forward step's undo was
            // registered when the call went out; an undo call in flight is done
            // again. Undos are idempotent.
            let undo_in_flight = s.pending.and_then(|(_, _, undo)| undo);
            let step_in_flight = s.pending.and_then(|(_, step, _)| step);
            let redo = match s.pending {
                Some((_, Some(step), _)) if step.redone_after_restart() => Some(step),
                _ => None,
            };
            s.pending = None;
            s.parked = false;
            // A pending undo retry lost its timer: retry at once.
            s.retry_at = None;
            if let Some(snapshot) = lost_snapshot {
                self.cloud.remove_snapshot(snapshot);
            }
            let s = self.sagas.get_mut(sid).expect("listed");
            if s.forward_only {
                // Roll forward: the lost call (a tail step such as unplugging the
                // source port) is issued again.
                if let Some(step) = step_in_flight {
                    s.steps.push_front(step);
                }
                continue;
            }
            if let (Mode::Forward, Some(step)) = (s.mode, redo) {
                // Roll forward: a stop or delete in flight is done again (it
                // registers its undo again when it goes out).
                if undo_in_flight.is_some() && s.done.last().copied() == undo_in_flight {
                    s.done.pop();
                }
                s.steps.push_front(step);
                continue;
            }
            if s.mode == Mode::Forward && doubt {
                s.in_doubt = true;
                s.done.clear();
                s.mode = Mode::Unwinding;
                s.failure = Some("management server restarted while a domain was being started or migrated: the VM is held as Unknown until its host reports".into());
            } else if s.mode == Mode::Forward {
                s.mode = Mode::Unwinding;
                s.failure = Some("management server restarted during the operation".into());
                s.undo_cautious = true;
            } else {
                s.done.extend(undo_in_flight);
                s.undo_cautious = true;
            }
        }
        for sid in ids {
            self.drive(sid);
        }
        self.fail_external_jobs();
        // Re-arm expunge timers the restart forgot.
        let delay = self
            .cloud
            .settings
            .i64("expunge.delay", crate::settings::Scope::Global)
            .max(0) as u64;
        let destroyed: Vec<(VmId, Millis)> = self
            .cloud
            .vms()
            .filter(|(_, v)| v.state == VmState::Destroyed)
            .map(|(_, v)| (v.id, v.state_since))
            .collect();
        for (vm, since) in destroyed {
            let at = Millis((since.0 + delay * 1000).max(self.now.0));
            self.out.push(Effect::Timer {
                at,
                timer: Timer::Expunge(vm),
            });
        }
    }
}

impl Controller {
    /// A host answers again after a silence (Alert, Disconnected, Down): a
    /// start or migration it never answered went out on the broken link.
    /// Rather than wait out the call's timeout (600 s for a migration), it
    /// gets one ping interval more: a reconnecting agent answers a resent
    /// request from its cache by then. Still unanswered, the call is in doubt:
    /// the VM is held as Unknown and settled by the host's VM report
    /// (adopted where its domain runs, unplugged elsewhere), and the
    /// maintenance or job waiting for it goes on.
    pub(crate) fn settle_calls_lost_with_link(&mut self, h: HostIdx) {
        let id = self.cloud.host_id(h);
        let lost: Vec<OpId> = self
            .sagas
            .values()
            .filter_map(|s| match (s.pending, &s.call) {
                (Some((op, Some(step), _)), Some(call)) if step.starts_a_domain() && call_touches(call, id) => Some(op),
                _ => None,
            })
            .filter(|op| self.ops.contains_key(op))
            .collect();
        let at = Millis(self.now.0 + self.ping_interval_ms());
        for op in lost {
            self.event(
                EventKind::Timeout,
                format!("op {}", op.0),
                "the host came back without answering: in doubt unless it answers within a ping interval",
            );
            self.out.push(Effect::Timer {
                at,
                timer: Timer::OpTimeout(op),
            });
        }
    }
}

/// Whether the call runs on the host (a migration: on either end).
fn call_touches(call: &DriverCall, host: HostId) -> bool {
    match call {
        DriverCall::MigrateDomain { from, to, .. } => *from == host || *to == host,
        other => other.host() == Some(host),
    }
}
