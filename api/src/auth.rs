//! Authentication: API-key signatures (plain and `signatureVersion=3`),
//! session login/logout, argon2 password hashes, key generation.

use crate::api::Api;
use crate::caller::Caller;
use crate::errors::ApiError;
use crate::params::Params;
use crate::render::Obj;
use crate::server::Answer;
use crate::sessions::random_token;
use crate::sign;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use axum::http::{HeaderMap, Method, header};
use std::time::Duration;
use stratus_core::controller::admin::AdminChange;

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> String {
    // A fresh random salt per hash (argon2's own OS-random salt).
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 hashes any password")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A new (api key, secret key) pair: 64 random bytes each, URL-safe base64.
pub fn new_keys() -> (String, String) {
    (random_token(64), random_token(64))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The caller of a signed or session request, and whether it was signed.
pub fn authenticate(api: &Api, headers: &HeaderMap, p: &Params) -> Result<(Caller, bool), ApiError> {
    if let Some(key) = p.opt_str("apiKey").or_else(|| p.opt_str("apikey")) {
        let signature = p.opt_str("signature").ok_or_else(ApiError::unable_to_verify)?;
        // One short read: the secret and the caller together (the HMAC runs
        // after it, outside the gateway lock).
        let found = api.read(|c| {
            let u = c.directory().user_by_api_key(key)?;
            Some((u.secret_key.clone()?, Caller::of_user(c, u.id)))
        });
        let Some((secret, caller)) = found else {
            return Err(ApiError::unable_to_verify());
        };
        let pairs = p.signed_pairs();
        if let Err(why) = sign::check_expiry(&pairs, now_ms(), None) {
            tracing::debug!(?why, "signature expiry refused");
            return Err(ApiError::unable_to_verify());
        }
        if !sign::verify(&pairs, &secret, signature) {
            return Err(ApiError::unable_to_verify());
        }
        // A disabled user, or one whose account is gone, has no caller.
        let caller = caller.ok_or_else(ApiError::unable_to_verify)?;
        return Ok((caller, true));
    }
    let key = p.opt_str("sessionkey").ok_or_else(ApiError::unable_to_verify)?;
    // CookieAndParameter: the cookie must be there and agree with the parameter.
    if cookie(headers, "sessionkey") != Some(key) {
        return Err(ApiError::unable_to_verify());
    }
    let jsession = cookie(headers, "JSESSIONID");
    let idle = Duration::from_secs(api.config.session_timeout_s);
    let user = api
        .sessions
        .check(key, jsession, idle)
        .ok_or_else(ApiError::unable_to_verify)?;
    let caller = api
        .read(|c| Caller::of_user(c, user))
        .ok_or_else(ApiError::unable_to_verify)?;
    Ok((caller, false))
}

/// `/` → `ROOT`, `/a/b/` → `ROOT/a/b` (CloudStack normalises to leading and trailing `/`).
fn domain_path(d: &str) -> String {
    let inner = d.trim().trim_matches('/');
    if inner.is_empty() || inner.eq_ignore_ascii_case("ROOT") {
        "ROOT".into()
    } else {
        format!("ROOT/{inner}")
    }
}

pub async fn login(api: &Api, method: &Method, p: &Params) -> Answer {
    let top = "loginresponse".to_string();
    if method != Method::POST {
        let e = ApiError::method_not_allowed("Please use HTTP POST to authenticate using this API");
        return Answer::error(top, &e);
    }
    let (Some(username), Some(password)) = (p.opt_str("username"), p.opt_str("password")) else {
        let e = ApiError::account("failed to authenticate user, check if username/password are correct");
        return Answer::error(top, &e);
    };
    let domain_id = p
        .opt_uuid("domainId")
        .ok()
        .flatten()
        .or(p.opt_uuid("domainid").ok().flatten());
    let path = domain_path(p.opt_str("domain").unwrap_or("/"));
    let found = api.read(|c| {
        let inv = &c.cloud().inv;
        let in_domain = |a| {
            inv.find_account(a).is_some_and(|ai| {
                let d = inv.domain(inv.account(ai).domain);
                match domain_id {
                    Some(id) => d.id.0 == id,
                    None => d.path == path,
                }
            })
        };
        c.directory()
            .user_by_name(in_domain, username)
            .map(|u| (u.id, u.password_hash.clone(), u.enabled))
    });
    let password = password.to_string();
    let ok = match found {
        Some((user, hash, true)) => {
            let good = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .unwrap_or(false);
            good.then_some(user)
        }
        _ => None,
    };
    let Some(user) = ok else {
        let e = ApiError::account("Failed to authenticate user admin; please provide valid credentials")
            .with_cs(crate::errors::cs::CLOUD_AUTHENTICATION);
        return Answer::error(top, &e);
    };
    let Some(caller) = api.read(|c| Caller::of_user(c, user)) else {
        return Answer::error(top, &ApiError::account("the user's account is gone"));
    };
    let (key, jsession) = api.sessions.open(user);
    let change = AdminChange::Audit {
        kind: "USER.LOGIN".into(),
        description: format!("user {} has logged in", caller.username),
        account: Some(caller.account),
    };
    let _ = api.admin(Some(&caller), change).await;
    let (first, last, tz) = api.read(|c| {
        let u = c.directory().user(user);
        (
            u.map(|u| u.first_name.clone()).unwrap_or_default(),
            u.map(|u| u.last_name.clone()).unwrap_or_default(),
            u.and_then(|u| u.timezone.clone()),
        )
    });
    let mut body = Obj::new()
        .s("username", caller.username.clone())
        .s("userid", caller.user.to_string())
        .s("domainid", caller.domain.0.to_string())
        .s("timeout", api.config.session_timeout_s.to_string())
        .s("account", caller.account_name.clone())
        .s("firstname", first)
        .s("lastname", last)
        .s("type", caller.role.account_type().to_string())
        .opt_s("timezone", tz)
        .s("registered", "false")
        .s("sessionkey", key.clone())
        .s("is2faenabled", "false")
        .s("is2faverified", "false")
        .s("passwordchangerequired", "false");
    if caller.is_admin() {
        body = body.s("managementserverid", api.server_id.to_string());
    }
    let mut a = Answer::ok(top, body);
    a.cookies
        .push(format!("JSESSIONID={jsession}; Path=/client; HttpOnly; SameSite=Lax"));
    a.cookies
        .push(format!("sessionkey={key}; Path=/client; HttpOnly; SameSite=Lax"));
    a
}

pub async fn logout(api: &Api, headers: &HeaderMap, p: &Params) -> Answer {
    let top = "logoutresponse".to_string();
    let key = p.opt_str("sessionkey").or_else(|| cookie(headers, "sessionkey"));
    if let Some(k) = key {
        api.sessions.close(k);
    }
    let mut a = Answer::ok(top, Obj::new().s("description", "success"));
    a.cookies.push("JSESSIONID=; Path=/client; Max-Age=0".into());
    a.cookies.push("sessionkey=; Path=/client; Max-Age=0".into());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_salts_differ() {
        let a = hash_password("s3cret");
        let b = hash_password("s3cret");
        assert_ne!(a, b);
        assert!(verify_password("s3cret", &a));
        assert!(!verify_password("s3cre", &a));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn domain_paths_normalise() {
        assert_eq!(domain_path("/"), "ROOT");
        assert_eq!(domain_path(""), "ROOT");
        assert_eq!(domain_path("/a/b/"), "ROOT/a/b");
        assert_eq!(domain_path("a"), "ROOT/a");
    }
}
