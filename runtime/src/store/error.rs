//! The Store's error type and the URL redaction used in its messages.

use std::sync::Arc;

/// Everything that can go wrong in the Store.
///
/// Messages name the store URL (with any password replaced by `***`) or the operation that
/// failed, so a log line is enough to know what broke.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:…` nor `postgres://…`/`postgresql://…`.
    #[error(
        "unsupported store URL `{url}`: expected sqlite://PATH, sqlite::memory: or postgres://USER:PASS@HOST:PORT/DB"
    )]
    UnsupportedUrl { url: String },

    /// The URL has a known scheme but could not be parsed.
    #[error("invalid store URL `{url}`: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// The database could not be opened or reached.
    #[error("cannot open store `{url}`: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// The schema migrations failed.
    #[error("migrating store `{url}` failed: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A database call failed during the named operation.
    #[error("store operation `{op}` failed: {source}")]
    Db {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// `append` was refused: its first seq does not follow the last stored seq (a gap or a
    /// duplicate). Nothing was written.
    #[error("append refused: the first seq must be {expected} (last stored seq + 1), got {got}; nothing written")]
    SeqMismatch { expected: u64, got: u64 },

    /// `append` was refused: the batch's seqs are not consecutive. Nothing was written.
    #[error("append refused: seqs not consecutive at batch index {index} ({prev} then {next}); nothing written")]
    NotConsecutive { index: usize, prev: u64, next: u64 },

    /// `put_snapshot` was refused: a newer snapshot is already stored.
    #[error("put_snapshot refused: snapshot seq {got} is older than the latest stored snapshot {latest}")]
    SnapshotOutOfOrder { latest: u64, got: u64 },

    /// A seq does not fit the signed 64-bit database column.
    #[error("seq {0} is out of range (the database stores seqs as signed 64-bit)")]
    SeqOutOfRange(u64),

    /// The database holds a value the Store never writes (e.g. a negative seq).
    #[error("store data is corrupt: {0}")]
    Corrupt(String),

    /// A group-commit batch failed; every waiter of that batch gets the same cause.
    #[error("group commit failed: {0}")]
    GroupCommit(Arc<StoreError>),

    /// The group-commit writer task is gone (runtime shut down or the task panicked).
    #[error("group commit writer is not running")]
    WriterGone,
}

impl StoreError {
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Db { op, source }
    }
}

/// Returns `url` with the password (in the user-info part and in any `password=` query
/// parameter) replaced by `***`, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_query(url);
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&redact_query(&rest[authority_end..]));
    out
}

/// Replaces the value of every query parameter whose name contains `password`.
fn redact_query(s: &str) -> String {
    let Some(q) = s.find('?') else {
        return s.to_string();
    };
    let (head, query) = s.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}{fragment}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://stratus:s3cr3t@127.0.0.1:5432/db"),
            "postgres://stratus:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@host/db?sslmode=disable"),
            "postgres://u:***@host/db?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://u@host/db"), "postgres://u@host/db");
        assert_eq!(
            redact_url("postgres://host/db?user=u&password=pw&x=1"),
            "postgres://host/db?user=u&password=***&x=1"
        );
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
