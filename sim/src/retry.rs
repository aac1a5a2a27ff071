//! Workload retry policies: a failed deploy, start or destroy is tried again
//! after `retry.after`, up to `retry.attempts` times, as a client would.

use crate::runner::Runner;
use stratus_core::cloud::DeploySpec;
use stratus_core::controller::{JobId, JobStatus, Request};
use stratus_core::ids::VmId;

#[derive(Clone, Debug)]
pub enum Op {
    Deploy(Box<DeploySpec>),
    Start(VmId),
    Destroy(VmId),
}

/// A job being watched for a retry.
#[derive(Clone, Debug)]
pub struct Watched {
    stream: usize,
    job: JobId,
    op: Op,
    /// Retries already made.
    done: u32,
}

impl Runner {
    /// Watches `job` if the stream has a retry policy (no cost otherwise).
    pub(crate) fn watch_job(&mut self, stream: usize, job: JobId, op: Op, done: u32) {
        let Some(p) = self.scenario.workload.get(stream).and_then(|w| w.retry.clone()) else {
            return;
        };
        if done >= p.attempts {
            return;
        }
        let now = self.engine.now;
        self.at_retry(now + p.after.ms, Watched { stream, job, op, done });
    }

    pub(crate) fn check_retry(&mut self, w: Watched) {
        let now = self.engine.now;
        let Some(after) = self.scenario.workload[w.stream].retry.as_ref().map(|p| p.after.ms) else {
            return;
        };
        match self.engine.ctl.job(w.job).map(|j| j.status) {
            Some(JobStatus::Pending) => {
                // Not over yet: look again later.
                self.at_retry(now + after, w);
                return;
            }
            Some(JobStatus::Failed) => {}
            _ => return,
        }
        let attempt = w.done + 1;
        if let Op::Deploy(_) = &w.op
            && let Some(failed) = self.engine.ctl.job(w.job).and_then(|j| j.vm)
        {
            // The retry replaces the VM that failed (it stays in Error, holding nothing).
            self.want_running.remove(&failed);
        }
        let (req, label) = match &w.op {
            Op::Deploy(spec) => {
                let mut spec = (**spec).clone();
                spec.name = format!("{}-r{attempt}", spec.name);
                let label = spec.name.clone();
                (Request::Deploy(spec), label)
            }
            Op::Start(vm) => (Request::Start { vm: *vm, host: None }, self.engine.ctl.vm_label(*vm)),
            Op::Destroy(vm) => (
                Request::Destroy { vm: *vm, expunge: true },
                self.engine.ctl.vm_label(*vm),
            ),
        };
        self.engine.log(
            "workload.retry",
            &label,
            &format!("attempt {attempt} after a failed job"),
        );
        let Ok(job) = self.engine.submit(req) else {
            // Refused outright (e.g. the VM is busy): count it and wait again.
            let next = Watched { done: attempt, ..w };
            if next.done
                < self.scenario.workload[next.stream]
                    .retry
                    .as_ref()
                    .map_or(0, |p| p.attempts)
            {
                self.at_retry(now + after, next);
            }
            return;
        };
        if let Op::Deploy(spec) = &w.op
            && let Some(vm) = self.engine.ctl.job(job).and_then(|j| j.vm)
        {
            self.adopt_retried(vm, w.stream, spec.start);
        }
        self.watch_job(w.stream, job, w.op, attempt);
    }
}
