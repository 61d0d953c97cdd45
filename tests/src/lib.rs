//! The test harness: each test starts a real `kyc-server` core on a random
//! port with a fresh data directory and a fresh database (SQLite by default;
//! a new PostgreSQL database when `DATABASE_URL` is set), and talks to it
//! over HTTP, through the same client the CLI uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;

use kyc_client::Client;
use kyc_core::api::{CompanyCredentials, CreateCompany};
use kyc_server::config::{Config, Overrides};
use sqlx::Connection;

pub use kyc_server::Server;

pub struct TestServer {
    pub server: Server,
    pub url: String,
    pub admin_token: String,
    pub data_dir: tempfile::TempDir,
    /// The PostgreSQL database made for this test, dropped at the end.
    postgres: Option<(String, String)>,
}

/// A PostgreSQL URL for a fresh database, when the suite runs against PostgreSQL.
async fn fresh_postgres() -> Option<(String, String, String)> {
    let base = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("kyc_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("DATABASE_URL is set but PostgreSQL is unreachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    Some((database_url(&base, &name), base, name))
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has changed its settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let postgres = fresh_postgres().await;
        let overrides = Overrides {
            bind: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(data_dir.path().to_owned()),
            database_url: postgres.as_ref().map(|(url, _, _)| url.clone()),
            ..Overrides::default()
        };
        let mut config = Config::load(None, overrides).unwrap();
        adjust(&mut config);
        let server = kyc_server::start(config).await.unwrap();
        let token_file = server
            .admin_token_file
            .clone()
            .expect("a fresh database gets an admin");
        let admin_token = std::fs::read_to_string(token_file)
            .unwrap()
            .trim()
            .to_owned();
        Self {
            url: format!("http://{}", server.addr),
            server,
            admin_token,
            data_dir,
            postgres: postgres.map(|(_, base, name)| (base, name)),
        }
    }

    pub fn admin(&self) -> Client {
        Client::new(&self.url, Some(self.admin_token.clone()))
    }

    pub fn client(&self, token: &str) -> Client {
        Client::new(&self.url, Some(token.to_owned()))
    }

    pub fn backend(&self) -> &'static str {
        self.server.state.store.backend()
    }

    /// A new company, with an HMAC secret when `hmac`.
    pub async fn company(&self, hmac: bool) -> CompanyCredentials {
        self.admin()
            .create_company(&CreateCompany {
                name: format!("Company {}", uuid::Uuid::now_v7().simple()),
                hmac,
                ..CreateCompany::default()
            })
            .await
            .unwrap()
    }

    /// Moves the server's clock `secs` seconds ahead.
    pub fn advance_clock(&self, secs: i64) {
        self.server.state.clock.advance(secs);
    }

    pub async fn session_count(&self) -> i64 {
        self.server.state.store.count_sessions().await.unwrap()
    }

    /// Runs raw SQL against the server's database (for checks the API must not allow).
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match &self.postgres {
            Some((base, name)) => {
                let url = database_url(base, name);
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            }
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")?
                    .filename(self.data_dir.path().join("kyc.db"));
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            }
        }
    }

    pub async fn stop(self) {
        self.server.stop().await.unwrap();
        if let Some((base, name)) = self.postgres
            && let Ok(mut admin) = sqlx::PgConnection::connect(&base).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
}

fn database_url(base: &str, name: &str) -> String {
    let (before_query, query) = match base.split_once('?') {
        Some((a, q)) => (a.to_owned(), format!("?{q}")),
        None => (base.to_owned(), String::new()),
    };
    let server_part = before_query
        .rsplit_once('/')
        .map_or(before_query.as_str(), |(s, _)| s);
    format!("{server_part}/{name}{query}")
}

/// A plain HTTP client for the integrator API.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}
