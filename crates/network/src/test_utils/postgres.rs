//! Fresh PostgreSQL databases and schemas for tests and benchmarks, on the server named by
//! [`URL_ENV`] (`.ci/run` installs and starts one and sets it).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

/// The environment variable naming a PostgreSQL server tests may create databases on
/// (`postgres://user:password@host:port/database`).
pub const URL_ENV: &str = "PROVERNET_TEST_POSTGRES_URL";

/// The server URL from [`URL_ENV`]; panics, naming the variable, when it is not set: a test
/// that needs PostgreSQL fails without it rather than passing silently.
pub fn server_url() -> String {
    std::env::var(URL_ENV).ok().filter(|url| url.starts_with("postgres")).unwrap_or_else(|| {
        panic!(
            "this test needs PostgreSQL: set {URL_ENV}=postgres://user:pw@127.0.0.1:5432/db \
                 (.ci/run sets one up)"
        )
    })
}

/// A name no other test or process uses: `prefix`, the process id, a counter and the time.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}_{micros}", std::process::id())
}

/// Creates a database named after `prefix` on the server at `admin` and returns its URL (left
/// for the machine to discard, or for [`drop_database`]).
pub async fn fresh_database_at(admin: &str, prefix: &str) -> String {
    let name = unique_name(prefix);
    let mut connection = sqlx::PgConnection::connect(admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(admin).expect("a PostgreSQL URL");
    url.set_path(&name);
    url.to_string()
}

/// [`fresh_database_at`] on the server of [`URL_ENV`].
pub async fn fresh_database(prefix: &str) -> String {
    fresh_database_at(&server_url(), prefix).await
}

/// Drops the database `url` names (made by [`fresh_database_at`] on `admin`), closing what is
/// still connected to it.
pub async fn drop_database(admin: &str, url: &str) {
    let url = url::Url::parse(url).expect("a PostgreSQL URL");
    let name = url.path().trim_start_matches('/');
    let mut connection = sqlx::PgConnection::connect(admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut connection)
        .await
        .expect("drop a test database");
}

/// Creates a schema named after `prefix` in the database at `url` and returns a URL whose
/// connections use it: cheaper than a database, for tests of one store.
pub async fn fresh_schema_at(url: &str, prefix: &str) -> String {
    let schema = unique_name(prefix);
    let admin = sqlx::PgPool::connect(url).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create a test schema");
    admin.close().await;
    let glue = if url.contains('?') { '&' } else { '?' };
    format!("{url}{glue}options[search_path]={schema}")
}
