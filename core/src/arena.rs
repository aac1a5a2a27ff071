//! A slot vector with stable indices and slot reuse, plus a UUID map. Iteration
//! is in slot order, so it is deterministic.

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "Id: Serialize + Ord, T: Serialize",
    deserialize = "Id: DeserializeOwned + Eq + Hash, T: DeserializeOwned"
))]
pub struct Arena<Id: Copy + Eq + Hash, T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    #[serde(with = "crate::serde_util::sorted_map")]
    map: FxHashMap<Id, u32>,
    live: usize,
}

impl<Id: Copy + Eq + Hash, T> Default for Arena<Id, T> {
    fn default() -> Self {
        Arena {
            slots: Vec::new(),
            free: Vec::new(),
            map: FxHashMap::default(),
            live: 0,
        }
    }
}

impl<Id: Copy + Eq + Hash, T> Arena<Id, T> {
    pub fn insert(&mut self, id: Id, value: T) -> u32 {
        let ix = match self.free.pop() {
            Some(ix) => {
                self.slots[ix as usize] = Some(value);
                ix
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(id, ix);
        self.live += 1;
        ix
    }

    pub fn remove(&mut self, id: Id) -> Option<T> {
        let ix = self.map.remove(&id)?;
        self.live -= 1;
        self.free.push(ix);
        self.slots[ix as usize].take()
    }

    pub fn find(&self, id: Id) -> Option<u32> {
        self.map.get(&id).copied()
    }

    pub fn get(&self, ix: u32) -> Option<&T> {
        self.slots.get(ix as usize).and_then(|s| s.as_ref())
    }

    pub fn get_mut(&mut self, ix: u32) -> Option<&mut T> {
        self.slots.get_mut(ix as usize).and_then(|s| s.as_mut())
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i as u32, v)))
    }

    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.map.reserve(n);
    }
}
