//! Makes cargo rebuild the crate when a migration file is added or changed, so the
//! `sqlx::migrate!` embeds stay current.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
