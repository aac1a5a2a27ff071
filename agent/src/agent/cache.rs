//! Answers by request id, so a request sent again is not executed twice.

use std::collections::{BTreeMap, VecDeque};
use stratus_wire::DriverResult;

pub(super) enum Slot {
    InFlight,
    Done(DriverResult),
}

/// Answers by request id, for one management-server instance.
pub(super) struct Cache {
    instance: String,
    pub slots: BTreeMap<u64, Slot>,
    done: VecDeque<u64>,
    cap: usize,
}

impl Cache {
    pub fn new(cap: usize) -> Cache {
        Cache {
            instance: String::new(),
            slots: BTreeMap::new(),
            done: VecDeque::new(),
            cap,
        }
    }

    /// A new management-server run: request ids start over.
    pub fn set_instance(&mut self, instance: &str) {
        if self.instance != instance {
            self.instance = instance.to_string();
            self.slots.clear();
            self.done.clear();
        }
    }

    pub fn complete(&mut self, instance: &str, req_id: u64, r: DriverResult) {
        if instance != self.instance {
            return;
        }
        self.slots.insert(req_id, Slot::Done(r));
        self.done.push_back(req_id);
        while self.done.len() > self.cap {
            if let Some(old) = self.done.pop_front() {
                self.slots.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_answers_of_one_instance() {
        let mut c = Cache::new(2);
        c.set_instance("a");
        for id in 1..=3 {
            c.slots.insert(id, Slot::InFlight);
            c.complete("a", id, DriverResult::Ok);
        }
        assert!(!c.slots.contains_key(&1), "evicted");
        assert!(matches!(c.slots.get(&3), Some(Slot::Done(DriverResult::Ok))));
        c.complete("old", 9, DriverResult::Ok);
        assert!(!c.slots.contains_key(&9), "an answer for another instance is dropped");
        c.set_instance("b");
        assert!(c.slots.is_empty());
    }
}
