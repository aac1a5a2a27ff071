//! Store tests: one binary, the same test bodies run on SQLite (always) and PostgreSQL
//! (when `STRATUS_TEST_POSTGRES_URL` is set; `.ci/run` always sets it).

mod common;
mod postgres;
mod sqlite;
