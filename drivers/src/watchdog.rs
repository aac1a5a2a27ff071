//! The isolation watchdog: the host's half of the fencing rule, written once
//! and used by the real agent (`stratus-agent`'s lease loop) and the simulated
//! host (`stratus-sim`'s ping rounds).
//!
//! **The rule.** A host that for `ha.lease.timeout` could neither renew any
//! storage lease **nor** reach management stops its own VMs. A storage blip
//! alone (management still answers) or a lost link alone (a lease still
//! renews) never stops anything. The management server relies on it: once
//! every readable lease of a silent host is stale and the host has been
//! silent for the timeout plus a margin, its VMs may be restarted elsewhere.
//!
//! The watchdog is a pure state machine with no clock: the caller hands in
//! the time as plain milliseconds (tokio's clock in the agent, the virtual
//! clock in the simulator), tells it about signs of life, and asks it.
//!
//! ```
//! use stratus_drivers::Watchdog;
//! let mut w = Watchdog::new(9_000);
//! w.on_lease_renewed(1_000);
//! w.on_management_contact(4_000);
//! assert!(!w.should_fence(12_999)); // 8.999 s since the last sign of life
//! assert!(w.should_fence(13_000)); // isolated for the whole timeout
//! w.fenced(13_000); // the caller stopped every VM
//! assert!(!w.should_fence(16_000)); // once per isolation
//! assert!(w.is_isolated(16_000)); // but nothing may run until a sign of life
//! ```
//!
//! A host with no shared pool has no lease to lose and no watchdog: callers
//! do not keep one for it (management cannot fence it by lease either).

/// Tracks a host's signs of life and says when it must stop its VMs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Watchdog {
    lease_timeout_ms: u64,
    last_lease_ms: Option<u64>,
    last_contact_ms: Option<u64>,
    /// The isolation already fenced, named by its last sign of life.
    fenced_isolation: Option<u64>,
    fenced_at_ms: Option<u64>,
}

impl Default for Watchdog {
    /// The default `ha.lease.timeout` (9 s).
    fn default() -> Self {
        Watchdog::new(9_000)
    }
}

impl Watchdog {
    /// A watchdog for `lease_timeout_ms` (`ha.lease.timeout`); time 0 counts
    /// as the last sign of life (the start of the caller's clock).
    pub fn new(lease_timeout_ms: u64) -> Watchdog {
        Watchdog {
            lease_timeout_ms,
            last_lease_ms: None,
            last_contact_ms: None,
            fenced_isolation: None,
            fenced_at_ms: None,
        }
    }

    pub fn lease_timeout_ms(&self) -> u64 {
        self.lease_timeout_ms
    }

    /// A lease was renewed (on any pool) at `now_ms`. Reporting an older
    /// renewal again changes nothing.
    pub fn on_lease_renewed(&mut self, now_ms: u64) {
        self.last_lease_ms = self.last_lease_ms.max(Some(now_ms));
    }

    /// Management was heard from (any line: greeting, pong, request…) at `now_ms`.
    pub fn on_management_contact(&mut self, now_ms: u64) {
        self.last_contact_ms = self.last_contact_ms.max(Some(now_ms));
    }

    pub fn last_lease_ms(&self) -> Option<u64> {
        self.last_lease_ms
    }

    pub fn last_contact_ms(&self) -> Option<u64> {
        self.last_contact_ms
    }

    /// The last sign of life of either kind (0: the start of the clock).
    pub fn last_sign_of_life_ms(&self) -> u64 {
        self.last_lease_ms.unwrap_or(0).max(self.last_contact_ms.unwrap_or(0))
    }

    /// How long the host has had neither a lease renewal nor management contact.
    pub fn isolated_for_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_sign_of_life_ms())
    }

    /// Isolated for the whole lease timeout: no VM may run on this host now.
    /// Stays true until the next sign of life.
    pub fn is_isolated(&self, now_ms: u64) -> bool {
        self.isolated_for_ms(now_ms) >= self.lease_timeout_ms
    }

    /// Time to stop every VM: isolated for the timeout, and this isolation
    /// was not fenced yet. True once per isolation (until `fenced`); a new
    /// sign of life starts a new one.
    pub fn should_fence(&self, now_ms: u64) -> bool {
        self.is_isolated(now_ms) && self.fenced_isolation != Some(self.last_sign_of_life_ms())
    }

    /// The caller stopped the host's VMs at `now_ms` for the current isolation.
    pub fn fenced(&mut self, now_ms: u64) {
        self.fenced_isolation = Some(self.last_sign_of_life_ms());
        self.fenced_at_ms = Some(now_ms);
    }

    /// When the host last fenced itself, if ever.
    pub fn fenced_at_ms(&self) -> Option<u64> {
        self.fenced_at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: u64 = 9_000;

    /// Drives a watchdog every `step` ms from 0 to `until`: `lease(t)` and
    /// `contact(t)` say whether each sign of life happens at `t`. Returns the
    /// times it fenced (the caller pattern: fence when `should_fence`).
    fn run(until: u64, lease: impl Fn(u64) -> bool, contact: impl Fn(u64) -> bool) -> Vec<u64> {
        let mut w = Watchdog::new(TIMEOUT);
        let mut fences = Vec::new();
        for t in (0..=until).step_by(1_000) {
            if lease(t) {
                w.on_lease_renewed(t);
            }
            if contact(t) {
                w.on_management_contact(t);
            }
            if w.should_fence(t) {
                w.fenced(t);
                fences.push(t);
            }
        }
        fences
    }

    #[test]
    fn a_storage_blip_alone_never_fences() {
        // Leases fail from 10 s to 60 s; management answers throughout.
        let fences = run(120_000, |t| !(10_000..60_000).contains(&t), |_| true);
        assert_eq!(fences, Vec::<u64>::new());
    }

    #[test]
    fn a_partition_alone_never_fences() {
        // Management unreachable from 10 s on; leases renew throughout.
        let fences = run(120_000, |_| true, |t| t < 10_000);
        assert_eq!(fences, Vec::<u64>::new());
    }

    #[test]
    fn losing_both_fences_exactly_once_at_the_boundary() {
        // Last lease at 20 s, last contact at 25 s: isolated from 25 s, so the
        // fence is due at 34 s exactly, and only once.
        let fences = run(120_000, |t| t <= 20_000, |t| t <= 25_000);
        assert_eq!(fences, vec![34_000]);

        let mut w = Watchdog::new(TIMEOUT);
        w.on_lease_renewed(20_000);
        w.on_management_contact(25_000);
        assert!(!w.should_fence(33_999), "one millisecond early");
        assert!(!w.is_isolated(33_999));
        assert!(w.should_fence(34_000));
        w.fenced(34_000);
        assert_eq!(w.fenced_at_ms(), Some(34_000));
        assert!(!w.should_fence(34_000) && !w.should_fence(99_000), "once per isolation");
        assert!(w.is_isolated(99_000), "still nothing may run");
        // A stale renewal reported again is no sign of life.
        w.on_lease_renewed(20_000);
        assert!(w.is_isolated(99_000) && !w.should_fence(99_000));
    }

    #[test]
    fn a_sign_of_life_starts_a_new_isolation() {
        let mut w = Watchdog::new(TIMEOUT);
        assert!(!w.should_fence(8_999));
        assert!(w.should_fence(9_000), "time 0 counts as the last sign of life");
        w.fenced(9_000);
        w.on_management_contact(10_000);
        assert!(!w.is_isolated(18_999));
        assert!(w.should_fence(19_000), "isolated again for the whole timeout");
        w.fenced(19_000);
        assert!(!w.should_fence(19_000));
        w.on_lease_renewed(19_500);
        assert!(!w.is_isolated(20_000));
        assert_eq!(w.last_sign_of_life_ms(), 19_500);
        assert_eq!(w.isolated_for_ms(20_000), 500);
    }

    #[test]
    fn both_lost_in_turn_but_never_together_never_fences() {
        // Storage down 0–30 s, link down 30–60 s: there is always one sign.
        let fences = run(60_000, |t| t >= 30_000, |t| t < 30_000);
        assert_eq!(fences, Vec::<u64>::new());
    }
}
