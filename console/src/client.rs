//! The console's only way to the cloud: the API's own request pipeline
//! (`stratus_api::server::call`), with the browser's session cookies and the
//! session key as CloudStack's UI sends them. Nothing here reads the
//! controller: what a page shows is what the API answers this user.

use crate::view::{Nav, NavLink};
use axum::http::{HeaderMap, Method, header};
use serde_json::Value;
use std::sync::Arc;
use stratus_api::Api;

/// A refusal as the API answered it: HTTP status and CloudStack's errortext.
#[derive(Debug, Clone)]
pub struct ApiErr {
    pub code: u16,
    pub text: String,
}

impl ApiErr {
    /// The session is gone (expired, logged out, server restarted): CloudStack
    /// answers 401 "unable to verify user credentials" and the UI logs in again.
    /// Other 401s (a command the role may not call) are shown as refusals.
    pub fn session_gone(&self) -> bool {
        self.code == 401 && self.text.to_ascii_lowercase().contains("unable to verify")
    }
}

impl std::fmt::Display for ApiErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (error {})", self.text, self.code)
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A logged-in browser: its cookies and session key, and who it is (for the
/// navigation only; every permission is the API's to check).
#[derive(Clone, Debug)]
pub struct Session {
    pub api: Arc<Api>,
    pub headers: HeaderMap,
    pub key: String,
    pub username: String,
    pub account: String,
    pub admin: bool,
}

impl Session {
    /// From the request's cookies, or `None` (not logged in).
    pub fn from_headers(api: &Arc<Api>, headers: &HeaderMap) -> Option<Session> {
        let key = cookie(headers, "sessionkey")?.to_string();
        let who = cookie(headers, "stratususer").unwrap_or("").to_string();
        let (username, account, role) = {
            let mut it = who.splitn(3, '.');
            (
                unescape(it.next().unwrap_or("")),
                unescape(it.next().unwrap_or("")),
                it.next().unwrap_or("0").to_string(),
            )
        };
        Some(Session {
            api: api.clone(),
            headers: headers.clone(),
            key,
            username,
            account,
            admin: role == "1",
        })
    }

    /// One API command as this user (GET-style read).
    pub async fn get(&self, pairs: &[(&str, &str)]) -> Result<Value, ApiErr> {
        self.run(Method::GET, pairs, &self.key).await
    }

    /// One API command from a submitted form: the session key is the form's
    /// (the page carried it), so a forged cross-site POST without it is refused
    /// by the API exactly as CloudStack refuses one.
    pub async fn post(&self, form_key: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiErr> {
        self.run(Method::POST, pairs, form_key).await
    }

    async fn run(&self, method: Method, pairs: &[(&str, &str)], key: &str) -> Result<Value, ApiErr> {
        let mut all: Vec<(String, String)> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("response".into(), "json".into()));
        all.push(("sessionkey".into(), key.into()));
        let a = stratus_api::server::call(&self.api, method, &self.headers, all).await;
        let text = stratus_api::render::json(&a.top, &a.body);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let inner = v.get(&a.top).cloned().unwrap_or(Value::Null);
        if a.status == 200 {
            Ok(inner)
        } else {
            Err(ApiErr {
                code: a.status,
                text: inner
                    .get("errortext")
                    .and_then(Value::as_str)
                    .unwrap_or("the request was refused")
                    .to_string(),
            })
        }
    }

    pub fn nav(&self, current: &str) -> Nav {
        let admin_links: &[(&'static str, &'static str)] = &[
            ("Dashboard", "/client/dashboard"),
            ("Infrastructure", "/client/infra"),
            ("Zone wizard", "/client/wizard"),
            ("Instances", "/client/instances"),
            ("Offerings", "/client/offerings"),
            ("Templates & ISOs", "/client/templates"),
            ("Accounts & users", "/client/accounts"),
            ("Global settings", "/client/settings"),
            ("Events", "/client/events"),
            ("Alerts", "/client/alerts"),
            ("What-if", "/client/whatif"),
        ];
        let user_links: &[(&'static str, &'static str)] = &[
            ("Dashboard", "/client/dashboard"),
            ("Instances", "/client/instances"),
            ("Templates & ISOs", "/client/templates"),
            ("Offerings", "/client/offerings"),
            ("Events", "/client/events"),
            ("My keys", "/client/accounts"),
        ];
        let links = if self.admin { admin_links } else { user_links };
        Nav {
            username: self.username.clone(),
            account: self.account.clone(),
            admin: self.admin,
            sessionkey: self.key.clone(),
            links: links
                .iter()
                .map(|(label, href)| NavLink {
                    label,
                    href,
                    current: *href == current,
                })
                .collect(),
        }
    }
}

/// `name.account.type`, each part percent-escaped (dots and separators).
pub fn who_cookie(username: &str, account: &str, account_type: &str) -> String {
    format!("{}.{}.{}", escape(username), escape(account), escape(account_type))
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Helpers to read CloudStack's JSON answers.
pub trait Json {
    fn s(&self, k: &str) -> String;
    fn list(&self, k: &str) -> Vec<Value>;
    fn n(&self, k: &str) -> f64;
}

impl Json for Value {
    fn s(&self, k: &str) -> String {
        match self.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }
    fn list(&self, k: &str) -> Vec<Value> {
        self.get(k).and_then(Value::as_array).cloned().unwrap_or_default()
    }
    fn n(&self, k: &str) -> f64 {
        match self.get(k) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::String(s)) => s.trim_end_matches('%').parse().unwrap_or(0.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_cookie_round_trips_odd_names() {
        let c = who_cookie("a.b c", "acme;x", "1");
        let mut it = c.splitn(3, '.');
        assert_eq!(unescape(it.next().unwrap()), "a.b c");
        assert_eq!(unescape(it.next().unwrap()), "acme;x");
        assert_eq!(it.next().unwrap(), "1");
    }
}
