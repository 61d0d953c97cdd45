//! Settings: `config/default.toml` (compiled in, the one place defaults live),
//! then an optional file, then environment variables and flags (applied by
//! the caller through [`Overrides`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub sessions: SessionsConfig,
    pub security: SecurityConfig,
    pub storage: StorageConfig,
    pub verification: VerificationConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub blob_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    pub model_dir: PathBuf,
    pub workers: usize,
    pub inference_threads: usize,
    pub queue_limit: usize,
    pub max_capture_bytes: usize,
    pub max_captures_per_step: i64,
    pub max_attempts: i64,
    pub face_match_threshold: f64,
    pub decline: std::collections::BTreeSet<kyc_verify::reason::Reason>,
}

impl VerificationConfig {
    /// The model directory in effect.
    pub fn model_dir(&self) -> PathBuf {
        if self.model_dir.as_os_str().is_empty() {
            kyc_verify::face::default_model_dir()
        } else {
            self.model_dir.clone()
        }
    }

    /// Inference threads in effect: the setting, or one per core.
    pub fn inference_threads(&self) -> usize {
        match self.inference_threads {
            0 => kyc_verify::runtime::available_threads(),
            n => n,
        }
    }

    /// Workers in effect: the setting, or one per core.
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub sqlite_durability: Durability,
    pub postgres_max_connections: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Full,
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    pub link_ttl_secs: i64,
    pub session_time_secs: i64,
    pub staff_link_ttl_min_secs: i64,
    pub staff_link_ttl_max_secs: i64,
    pub session_time_min_secs: i64,
    pub session_time_max_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    pub master_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Values from the environment and the command line, which beat the files.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub master_key: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid settings: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, overlaid with `file` if given, then with `overrides`.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            DEFAULTS
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: "config/default.toml".into(),
                    message: e.to_string(),
                })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let overlay: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
            merge(&mut table, overlay);
        }
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        let o = overrides;
        if let Some(bind) = o.bind {
            config.server.bind = bind;
        }
        if let Some(dir) = o.data_dir {
            config.server.data_dir = dir;
        }
        if let Some(url) = o.database_url {
            config.database.url = url;
        }
        if let Some(url) = o.public_url {
            config.server.public_url = url;
        }
        if let Some(key) = o.master_key {
            config.security.master_key = key;
        }
        if let Some(format) = o.log_format {
            config.log.format = format;
        }
        if let Some(level) = o.log_level {
            config.log.level = level;
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let s = &self.sessions;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if s.link_ttl_secs < 60 {
            return invalid(format!(
                "sessions.link_ttl_secs must be at least 60, got {}",
                s.link_ttl_secs
            ));
        }
        if !(s.session_time_min_secs..=s.session_time_max_secs).contains(&s.session_time_secs) {
            return invalid(format!(
                "sessions.session_time_secs ({}) must lie between session_time_min_secs and session_time_max_secs",
                s.session_time_secs
            ));
        }
        if s.staff_link_ttl_min_secs > s.staff_link_ttl_max_secs {
            return invalid(
                "sessions.staff_link_ttl_min_secs is above staff_link_ttl_max_secs".into(),
            );
        }
        let v = &self.verification;
        if !(v.face_match_threshold.is_finite() && (-1.0..=1.0).contains(&v.face_match_threshold)) {
            return invalid(format!(
                "verification.face_match_threshold must lie in -1..=1, got {}",
                v.face_match_threshold
            ));
        }
        if v.max_attempts < 1 || v.max_captures_per_step < 1 || v.queue_limit < 1 {
            return invalid(
                "verification.max_attempts, max_captures_per_step and queue_limit must be at least 1"
                    .into(),
            );
        }
        if v.max_capture_bytes < 1024 {
            return invalid(format!(
                "verification.max_capture_bytes must be at least 1024, got {}",
                v.max_capture_bytes
            ));
        }
        let url = &self.database.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return invalid(format!(
                "database.url must be empty (embedded SQLite) or a postgres:// URL, got {:?}",
                mask_url(url)
            ));
        }
        if !self.server.public_url.is_empty() {
            match url_scheme(&self.server.public_url) {
                Some("http" | "https") => {}
                _ => {
                    return invalid(format!(
                        "server.public_url must be an http(s) URL, got {:?}",
                        self.server.public_url
                    ));
                }
            }
        }
        Ok(())
    }

    /// The base URL links are made of, without a trailing slash.
    pub fn public_url(&self) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{}", self.server.bind)
        } else {
            self.server.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// The settings as TOML, secrets masked.
    pub fn show(&self) -> String {
        let mut shown = self.clone();
        if !shown.security.master_key.is_empty() {
            shown.security.master_key = "********".into();
        }
        shown.database.url = mask_url(&shown.database.url);
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print settings: {e}\n"))
    }
}

fn url_scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((credentials, host)) = rest.split_once('@')
        && let Some((user, _)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:********@{host}");
    }
    url.to_owned()
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_file_overrides_and_typos_are_refused() {
        let config = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sessions.link_ttl_secs, 900);

        let dir = std::env::temp_dir().join(format!("kyc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.toml");
        std::fs::write(&file, "[sessions]\nlink_ttl_secs = 600\n").unwrap();
        let config = Config::load(Some(&file), Overrides::default()).unwrap();
        assert_eq!(config.sessions.link_ttl_secs, 600);
        assert_eq!(config.sessions.session_time_secs, 1800);

        std::fs::write(&file, "[sessions]\nlink_ttl_sec = 600\n").unwrap();
        let err = Config::load(Some(&file), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("link_ttl_sec"), "{err}");
    }

    #[test]
    fn masks_database_password() {
        assert_eq!(
            mask_url("postgres://kyc:hunter2@db/kyc"),
            "postgres://kyc:********@db/kyc"
        );
        assert_eq!(mask_url(""), "");
    }
}
