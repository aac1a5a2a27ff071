//! A panic while the controller handles one input must not take the server
//! down. `State::feed` catches it; the controller may be half-changed, so it
//! is replaced by its last known-good state: the wal's [`Checkpoint`] (the
//! newest snapshot's bytes, or without a Store a clone taken every
//! `snapshot_every` inputs) plus every input applied since (batches the
//! writer took, then the buffer), without the one that panicked, which was
//! never journaled. That is the state recovery from the Store reaches, so
//! the durable path stays exact. The hot path pays nothing extra: the
//! snapshot bytes and batches exist anyway and are only kept a little longer.
//!
//! Then it behaves as after a crash: what the lost controller produced and
//! is not out yet (held calls and timers), the calls it had in flight and
//! its armed timers are forgotten, `Input::Restart` settles the sagas, and
//! every connected agent is asked for a fresh VM report. The caller of the
//! poison input gets `CoreError::Internal`.

use super::state::State;
use super::wal::{Base, Checkpoint};
use crate::store::JournalEntry;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use stratus_core::CoreError;
use stratus_core::controller::journal::replay;
use stratus_core::controller::{Controller, Input, Reply};
use tokio::sync::oneshot;

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

impl Checkpoint {
    /// The controller after input `upto`: the base, then every kept input
    /// and `buf`, in order (a gap is an error).
    pub fn rebuild(&self, buf: &[JournalEntry], upto: u64) -> Result<Controller, String> {
        let mut ctl = match &self.base {
            Base::Bytes(b) => Controller::from_state_bytes(b)?,
            Base::Ctl(c) => (**c).clone(),
        };
        ctl.set_logging(false);
        let mut last = self.seq;
        for e in self.taken.iter().flat_map(|b| b.iter()).chain(buf) {
            if e.seq <= last {
                continue; // covered by the base
            }
            if e.seq != last + 1 {
                return Err(format!("input {} follows {last}", e.seq));
            }
            let input = Input::from_bytes(&e.payload).map_err(|x| format!("input {}: {x}", e.seq))?;
            replay(&mut ctl, e.at_ms.max(0) as u64, input);
            last = e.seq;
        }
        ctl.set_logging(true);
        if last != upto {
            return Err(format!("inputs kept end at {last}, but {upto} were applied"));
        }
        Ok(ctl)
    }
}

impl State {
    /// Handling input `name` (encoded: `payload`) panicked with `why`.
    pub(super) fn after_panic(
        &mut self,
        name: &'static str,
        payload: &[u8],
        why: String,
        answer: Option<oneshot::Sender<Reply>>,
    ) {
        tracing::error!(input = name, panic = %why, "handling an input panicked; rebuilding the controller without it");
        let decoded = Input::from_bytes(payload);
        if let Some(tx) = answer {
            let err = CoreError::Internal(format!("handling this input panicked ({why}); nothing changed"));
            let reply = match &decoded {
                Ok(input) => input.error_reply(err),
                Err(_) => Reply::Done(Err(err)),
            };
            let _ = tx.send(reply);
        }
        let (base, kept) = (self.wal.checkpoint.seq, self.wal.applied - self.wal.checkpoint.seq);
        let rebuilt = if matches!(decoded, Ok(Input::Restart)) {
            // It would panic again after every rebuild.
            Err("the restart itself panicked".to_string())
        } else {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.wal.checkpoint.rebuild(&self.wal.buf, self.wal.applied)
            }))
            .unwrap_or_else(|p| Err(format!("replay panicked: {}", panic_message(&*p))))
        };
        let ctl = match rebuilt {
            Ok(ctl) => ctl,
            Err(e) => {
                // As if the process had died: nothing more is applied or sent;
                // a restart recovers the durable inputs from the Store.
                let detail = format!("{why}; cannot rebuild the controller ({e}): halted");
                self.event("gateway.input.panicked", name.into(), detail);
                self.halted = true;
                return;
            }
        };
        self.ctl = ctl;
        let detail = format!(
            "{why}; rebuilt without it from input {base} + {kept} inputs: state {}",
            self.ctl.state_hash()
        );
        self.event("gateway.input.panicked", name.into(), detail);
        // What the lost controller produced and that is not out yet is lost,
        // as in a crash; its calls in flight and timers are forgotten.
        for h in &mut self.wal.held {
            h.effects.clear();
        }
        self.timers.clear();
        self.pending.clear();
        self.parked.clear();
        self.feed(Input::Restart, None);
        let hosts: Vec<_> = self.conns.keys().copied().collect();
        for h in hosts {
            self.resync(h);
        }
    }
}
