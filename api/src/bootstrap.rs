//! First start: the root admin user. There is no default password: it comes
//! from the operator (`--admin-password` / `STRATUS_ADMIN_PASSWORD`) or is
//! generated and shown once.

use crate::api::Api;
use crate::auth::{hash_password, new_keys};
use crate::errors::ApiError;
use crate::sessions::random_token;
use stratus_core::controller::admin::{AdminChange, NewUser};
use stratus_core::controller::directory::UserId;

/// What `ensure_admin` did.
#[derive(Debug)]
pub enum AdminUser {
    /// Created with the given password.
    Created(UserId),
    /// Created with a generated password (shown once).
    Generated(UserId, String),
    /// Already there (a restart): the password is whatever it was.
    Existing(UserId),
}

impl AdminUser {
    pub fn id(&self) -> UserId {
        match self {
            AdminUser::Created(u) | AdminUser::Generated(u, _) | AdminUser::Existing(u) => *u,
        }
    }
}

pub async fn ensure_admin(api: &Api, password: Option<String>) -> Result<AdminUser, ApiError> {
    let (account, existing) = api.read(|c| {
        let account = c.cloud().admin_account();
        let user = c
            .directory()
            .users
            .iter()
            .find(|u| u.account == account && u.username == "admin");
        (account, user.map(|u| u.id))
    });
    if let Some(u) = existing {
        return Ok(AdminUser::Existing(u));
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(|| random_token(15));
    if password.chars().count() < 8 {
        return Err(ApiError::param("the admin password must have at least 8 characters"));
    }
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || hash_password(&p))
            .await
            .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?
    };
    let user = NewUser {
        username: "admin".into(),
        password_hash: hash,
        first_name: "Admin".into(),
        last_name: "User".into(),
        email: "admin@localhost".into(),
        timezone: None,
    };
    let created = api.admin(None, AdminChange::CreateUser { account, user }).await?;
    let id = UserId(created.id);
    Ok(if generated {
        AdminUser::Generated(id, password)
    } else {
        AdminUser::Created(id)
    })
}

/// The user's API keys, registering a pair if it has none.
pub async fn ensure_keys(api: &Api, user: UserId) -> Result<(String, String), ApiError> {
    let have = api.read(|c| {
        let u = c.directory().user(user)?;
        Some((u.api_key.clone()?, u.secret_key.clone()?))
    });
    if let Some(k) = have {
        return Ok(k);
    }
    let (api_key, secret_key) = new_keys();
    let change = AdminChange::SetUserKeys {
        user,
        api_key: api_key.clone(),
        secret_key: secret_key.clone(),
    };
    api.admin(None, change).await?;
    Ok((api_key, secret_key))
}
