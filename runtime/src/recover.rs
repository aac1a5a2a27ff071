//! Rebuilding the controller from the Store: the newest snapshot whose bytes
//! hash to what was recorded, then every later journal entry replayed in
//! order. The controller is deterministic, so the result is the state it had
//! after the last durable input.

use crate::store::{Snapshot, Store};
use stratus_core::controller::input::hash_hex;
use stratus_core::controller::journal::replay;
use stratus_core::controller::{Controller, Input};

/// A controller rebuilt from the Store.
#[derive(Debug)]
pub struct Recovered {
    pub ctl: Controller,
    /// The last input folded in (the next one gets `seq + 1`).
    pub seq: u64,
    /// The snapshot it started from.
    pub snapshot_seq: u64,
    /// Journal entries replayed after the snapshot.
    pub replayed: u64,
    /// `state_hash()` of the rebuilt controller.
    pub hash: String,
    /// Its canonical bytes (`state_bytes()`), which `hash` is the hash of.
    pub state: Vec<u8>,
    /// Newer snapshots skipped because they did not decode to their recorded hash.
    pub bad_snapshots: Vec<String>,
}

/// The newest good snapshot plus the journal after it; `None` for a store
/// that holds no snapshot at all (a fresh one). A newer snapshot that does not
/// decode to its recorded hash is skipped for the older one (the journal is
/// kept from there).
pub async fn recover(store: &Store) -> Result<Option<Recovered>, String> {
    let listed = store.snapshots().await.map_err(|e| e.to_string())?;
    if listed.is_empty() {
        let last = store.last_seq().await.map_err(|e| e.to_string())?;
        if last > 0 {
            return Err(format!("the store holds {last} journal entries but no snapshot"));
        }
        return Ok(None);
    }
    let mut bad = Vec::new();
    for (seq, _) in listed {
        let Some(snap) = store.load_snapshot(seq).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let ctl = match decode_checked(&snap) {
            Ok(ctl) => ctl,
            Err(why) => {
                tracing::warn!(seq, %why, "snapshot skipped");
                bad.push(why);
                continue;
            }
        };
        let entries = store.journal_after(seq).await.map_err(|e| e.to_string())?;
        let mut ctl = ctl;
        ctl.set_logging(false);
        let mut last = seq;
        for e in &entries {
            if e.seq != last + 1 {
                return Err(format!("journal gap: entry {} follows {last}", e.seq));
            }
            let input = Input::from_bytes(&e.payload).map_err(|x| format!("journal entry {}: {x}", e.seq))?;
            replay(&mut ctl, e.at_ms.max(0) as u64, input);
            last = e.seq;
        }
        ctl.set_logging(true);
        let state = ctl.state_bytes();
        return Ok(Some(Recovered {
            ctl,
            seq: last,
            snapshot_seq: seq,
            replayed: entries.len() as u64,
            hash: hash_hex(&state),
            state,
            bad_snapshots: bad,
        }));
    }
    Err(format!("no stored snapshot is usable: {}", bad.join("; ")))
}

/// Decodes a snapshot and checks it against its recorded hash.
fn decode_checked(snap: &Snapshot) -> Result<Controller, String> {
    let bytes_hash = hash_hex(&snap.payload);
    if bytes_hash != snap.state_hash {
        return Err(format!(
            "snapshot {} bytes hash to {bytes_hash}, recorded {}",
            snap.seq, snap.state_hash
        ));
    }
    let ctl = Controller::from_state_bytes(&snap.payload)?;
    let hash = ctl.state_hash();
    if hash != snap.state_hash {
        return Err(format!(
            "snapshot {} decodes to state {hash}, but was taken as {}",
            snap.seq, snap.state_hash
        ));
    }
    Ok(ctl)
}

/// The encoded snapshot of `ctl` after input `seq` (CPU work: serializing and
/// hashing; run it off the hot path).
pub fn encode_snapshot(seq: u64, ctl: &Controller, taken_at_ms: u64) -> Snapshot {
    let payload = ctl.state_bytes();
    Snapshot {
        seq,
        state_hash: hash_hex(&payload),
        taken_at_ms: taken_at_ms as i64,
        payload,
    }
}
