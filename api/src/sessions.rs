//! Login sessions (CloudStack's servlet sessions): a random session key and a
//! JSESSIONID, both required on later calls (cookie and `sessionkey`
//! parameter, CloudStack's default `CookieAndParameter`). Kept in memory: after
//! a restart an old session gets 401 and the client logs in again, as with
//! CloudStack behind a restarted servlet container.

use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use stratus_core::controller::directory::UserId;

#[derive(Clone, Debug)]
pub struct Session {
    pub user: UserId,
    pub jsessionid: String,
    pub last_used: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_key: Mutex<HashMap<String, Session>>,
}

/// `n` random bytes from the OS, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Sessions {
    /// A new session for `user`: (session key, JSESSIONID).
    pub fn open(&self, user: UserId) -> (String, String) {
        let key = random_token(20);
        let jsessionid = format!("{}.stratus", random_token(16));
        let s = Session {
            user,
            jsessionid: jsessionid.clone(),
            last_used: Instant::now(),
        };
        self.lock().insert(key.clone(), s);
        (key, jsessionid)
    }

    /// The user of a live session: the key must match a session and, when the
    /// client sent one, the JSESSIONID cookie too. Touches it.
    pub fn check(&self, key: &str, jsessionid: Option<&str>, idle: Duration) -> Option<UserId> {
        let mut m = self.lock();
        let s = m.get_mut(key)?;
        if s.last_used.elapsed() > idle {
            m.remove(key);
            return None;
        }
        if let Some(j) = jsessionid
            && j != s.jsessionid
        {
            return None;
        }
        s.last_used = Instant::now();
        Some(s.user)
    }

    pub fn close(&self, key: &str) -> bool {
        self.lock().remove(key).is_some()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }
}
