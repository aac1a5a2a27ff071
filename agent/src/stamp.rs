//! The local link between the agent and the host monitor (`stratus hostmon`):
//! two small stamp files in a run directory (`/run/stratus` in production).
//!
//! - `contact`, written by the agent on lines from the management server
//!   (at most every [`CONTACT_MIN_GAP`]): "management was heard from".
//! - `hostmon`, written by the monitor at every round: "the monitor lives",
//!   and when it last renewed a lease.
//!
//! Files rather than a socket: either process may die and restart at any
//! time, and a file needs no reconnection, never blocks its writer, keeps its
//! last word across a restart of the other side, and an operator reads it
//! with `cat`. Each write is atomic (a temporary file renamed over the stamp).
//!
//! Stamps carry wall-clock milliseconds only so the reader can tell how long
//! ago the event was; a reader counts an event only when the stamp changed
//! since its previous look, and places it between that look and now
//! ([`StampReader`]), so a wall-clock step can never make an old sign of life
//! look newer than the previous look.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The agent's stamp: management contact.
pub const CONTACT_FILE: &str = "contact";
/// The monitor's stamp: alive, and its last lease renewal.
pub const MONITOR_FILE: &str = "hostmon";
/// The agent rewrites its contact stamp at most this often.
pub const CONTACT_MIN_GAP: Duration = Duration::from_millis(500);

/// One stamp file's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The writing process.
    pub pid: u32,
    /// Counts writes by this process (a new value is a new event).
    pub seq: u64,
    /// Wall-clock ms of the event (contact, or the monitor's round).
    pub at_ms: u64,
    /// Monitor only: wall-clock ms of its last successful lease renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_renewed_ms: Option<u64>,
    /// Monitor only: how many renewals it has made. Names a renewal: two
    /// renewals can share a wall-clock millisecond (a clock step, a test).
    #[serde(default)]
    pub lease_renewals: u64,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `stamp` to `path` atomically (temporary file, then rename).
pub fn write(path: &Path, stamp: &Stamp) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", stamp.pid));
    std::fs::write(&tmp, serde_json::to_string(stamp).expect("stamp serializes") + "\n")?;
    std::fs::rename(&tmp, path)
}

/// The stamp in `path`, if there is a readable one.
pub fn read(path: &Path) -> Option<Stamp> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// What changed in a stamp since the reader's previous look, placed on the
/// reader's clock (ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub stamp: Stamp,
    /// When the stamped event happened, on the reader's clock.
    pub at: u64,
    /// When the monitor's lease renewal happened, if it is new since the previous look.
    pub lease_renewed_at: Option<u64>,
}

/// Follows one stamp file.
#[derive(Debug)]
pub struct StampReader {
    path: PathBuf,
    last: Option<Stamp>,
    last_look_ms: u64,
}

impl StampReader {
    /// A reader that has not looked yet: at its first look, a stamp already
    /// there counts as new, placed by its age alone (not before the start of
    /// the reader's clock).
    pub fn new(path: PathBuf) -> StampReader {
        StampReader {
            path,
            last: None,
            last_look_ms: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks at the stamp at `now_ms` (reader's clock); `Some` if it changed.
    pub fn look(&mut self, now_ms: u64) -> Option<Seen> {
        self.look_at(now_ms, wall_ms())
    }

    fn look_at(&mut self, now_ms: u64, now_wall: u64) -> Option<Seen> {
        let previous_look = std::mem::replace(&mut self.last_look_ms, now_ms);
        let stamp = read(&self.path)?;
        if self.last.as_ref() == Some(&stamp) {
            return None;
        }
        let place = |wall: u64| local_time(now_ms, previous_look, now_wall, wall);
        let renewal = |s: &Stamp| (s.lease_renewals, s.lease_renewed_ms);
        let new_renewal = self.last.as_ref().map(renewal) != Some(renewal(&stamp));
        let lease_renewed_at = stamp.lease_renewed_ms.filter(|_| new_renewal).map(place);
        let seen = Seen {
            at: place(stamp.at_ms),
            lease_renewed_at,
            stamp: stamp.clone(),
        };
        self.last = Some(stamp);
        Some(seen)
    }
}

/// Places an event stamped `event_wall` (wall ms) on the reader's clock: its
/// age subtracted from `now_ms`, but never after now and never before the
/// previous look (it was not there then).
pub fn local_time(now_ms: u64, previous_look_ms: u64, now_wall: u64, event_wall: u64) -> u64 {
    let age = now_wall.saturating_sub(event_wall);
    now_ms.saturating_sub(age).max(previous_look_ms).min(now_ms)
}

/// The agent's side: rewrites the contact stamp, rate-limited.
#[derive(Debug)]
pub struct ContactStamp {
    path: PathBuf,
    state: std::sync::Mutex<(u64, Option<tokio::time::Instant>)>,
}

impl ContactStamp {
    pub fn new(run_dir: &Path) -> ContactStamp {
        ContactStamp {
            path: run_dir.join(CONTACT_FILE),
            state: std::sync::Mutex::new((0, None)),
        }
    }

    /// Management was just heard from. Skipped if the last write is younger
    /// than [`CONTACT_MIN_GAP`] (the monitor then sees a slightly older
    /// contact: it can only fence earlier, never later). A failed write is
    /// returned; the next contact tries again.
    pub fn touch(&self) -> std::io::Result<()> {
        let mut st = self.state.lock().expect("contact stamp lock");
        if st.1.is_some_and(|t| t.elapsed() < CONTACT_MIN_GAP) {
            return Ok(());
        }
        st.0 += 1;
        st.1 = Some(tokio::time::Instant::now());
        write(
            &self.path,
            &Stamp {
                pid: std::process::id(),
                seq: st.0,
                at_ms: wall_ms(),
                lease_renewed_ms: None,
                lease_renewals: 0,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stratus-stamp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn an_event_lands_between_the_previous_look_and_now() {
        // 2 s old by the wall clock: 2 s before now.
        assert_eq!(local_time(10_000, 5_000, 1_000_000, 998_000), 8_000);
        // The wall clock stepped forward (looks 60 s old): not before the previous look.
        assert_eq!(local_time(10_000, 5_000, 1_000_000, 940_000), 5_000);
        // The wall clock stepped back (stamped in the future): now, not later.
        assert_eq!(local_time(10_000, 5_000, 1_000_000, 1_003_000), 10_000);
    }

    #[test]
    fn a_reader_reports_each_change_once() {
        let d = dir("reader");
        let path = d.join(MONITOR_FILE);
        let mut r = StampReader::new(path.clone());
        assert_eq!(r.look_at(1_000, 50_000), None, "no stamp yet");
        let s1 = Stamp {
            pid: 7,
            seq: 1,
            at_ms: 50_500,
            lease_renewed_ms: Some(50_400),
            lease_renewals: 1,
        };
        write(&path, &s1).unwrap();
        let seen = r.look_at(2_000, 51_000).unwrap();
        assert_eq!((seen.at, seen.lease_renewed_at), (1_500, Some(1_400)));
        assert_eq!(r.look_at(3_000, 52_000), None, "unchanged: nothing new");
        // A new round without a new renewal: alive, but no lease news.
        let s2 = Stamp {
            seq: 2,
            at_ms: 52_900,
            ..s1.clone()
        };
        write(&path, &s2).unwrap();
        let seen = r.look_at(4_000, 53_000).unwrap();
        assert_eq!((seen.at, seen.lease_renewed_at), (3_900, None));
        // A second renewal within the same wall-clock millisecond is still news.
        let s3 = Stamp {
            seq: 3,
            lease_renewals: 2,
            ..s2.clone()
        };
        write(&path, &s3).unwrap();
        let seen = r.look_at(5_000, 53_000).unwrap();
        assert_eq!(seen.lease_renewed_at, Some(4_000));
        assert!(!d.join("hostmon.tmp7").exists(), "the temporary file was renamed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn contact_writes_are_rate_limited() {
        let d = dir("contact");
        let c = ContactStamp::new(&d);
        c.touch().unwrap();
        c.touch().unwrap();
        assert_eq!(
            read(&d.join(CONTACT_FILE)).unwrap().seq,
            1,
            "the second touch was too soon"
        );
        std::thread::sleep(CONTACT_MIN_GAP + Duration::from_millis(20));
        c.touch().unwrap();
        assert_eq!(read(&d.join(CONTACT_FILE)).unwrap().seq, 2);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
