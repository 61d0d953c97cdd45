//! Bringing a server up: data directory, master key, database, the first
//! admin, the listener; and bringing it down gracefully.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use kyc_core::api::Role;
use kyc_core::auth::{self, Sealer, TokenKind};
use kyc_core::store::{AuditRecord, Durability, NewStaff, Store, StoreError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{AppState, router};
use crate::blobs::Blobs;
use crate::config::{self, Config};
use crate::verification::Verifier;

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub public_url: String,
    /// Where the first admin's token was written, when this start created it.
    pub admin_token_file: Option<PathBuf>,
    pub state: AppState,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets requests in flight finish, flushes the database.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task")?.context("serving")?;
        self.state.store.close().await;
        Ok(())
    }
}

/// Starts a server as `config` says; `bind` may use port 0.
pub async fn start(config: Config) -> Result<Server> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let sealer = Sealer::new(&master_key(&config, &data_dir)?);

    let store = if config.database.url.is_empty() {
        let path = data_dir.join("kyc.db");
        let durability = match config.database.sqlite_durability {
            config::Durability::Full => Durability::Full,
            config::Durability::Normal => Durability::Normal,
        };
        Store::open_sqlite(&path, durability)
            .await
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?
    } else {
        Store::open_postgres(
            &config.database.url,
            config.database.postgres_max_connections,
        )
        .await
        .with_context(|| {
            format!(
                "cannot open PostgreSQL at {}",
                config::mask_url(&config.database.url)
            )
        })?
    };
    let admin_token_file = first_admin(&store, &data_dir).await?;

    let listener = tokio::net::TcpListener::bind(config.server.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.bind))?;
    let addr = listener.local_addr()?;
    let public_url = if config.server.public_url.is_empty() {
        format!("http://{addr}")
    } else {
        config.public_url()
    };
    let clock = kyc_core::clock::Clock::default();
    let blob_dir = if config.storage.blob_dir.as_os_str().is_empty() {
        data_dir.join("blobs")
    } else {
        config.storage.blob_dir.clone()
    };
    let blobs = Blobs::local(&blob_dir)?;
    kyc_verify::runtime::configure(config.verification.inference_threads());
    let verifier = Arc::new(Verifier::new(
        config.verification.clone(),
        store.clone(),
        blobs,
        clock.clone(),
    ));
    let missing = kyc_verify::pipeline::Models::missing(&config.verification.model_dir());
    if !missing.is_empty() {
        tracing::warn!(
            dir = %config.verification.model_dir().display(),
            missing = %missing.join(", "),
            "model files are missing: document, face and liveness steps will answer 503 \
             models_missing until `{}` installs them",
            kyc_verify::pipeline::INSTALL_COMMAND
        );
    }
    let resumed = verifier.resume().await?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished verification jobs");
    }
    let state = AppState {
        store,
        config: Arc::new(config),
        sealer,
        public_url: public_url.clone().into(),
        clock,
        verifier,
    };
    let (shutdown, stopped) = oneshot::channel::<()>();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server {
        addr,
        public_url,
        admin_token_file,
        state,
        shutdown,
        task,
    })
}

/// The key that seals companies' secrets: from the settings, else from
/// `<data_dir>/master.key`, created (mode 0600) on first start.
fn master_key(config: &Config, data_dir: &Path) -> Result<[u8; 32]> {
    if !config.security.master_key.is_empty() {
        return Sealer::parse_master_key(&config.security.master_key)
            .context("security.master_key");
    }
    let path = data_dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => Sealer::parse_master_key(&text).with_context(|| format!("{}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = Sealer::new_master_key()?;
            write_private(&path, &hex::encode(key))?;
            Ok(key)
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// On an empty database, creates the admin account and writes its token to
/// `<data_dir>/admin.token` (mode 0600).
async fn first_admin(store: &Store, data_dir: &Path) -> Result<Option<PathBuf>> {
    if store.count_staff().await? > 0 {
        return Ok(None);
    }
    let token = auth::new_token(TokenKind::Staff)?;
    let staff = NewStaff {
        id: uuid::Uuid::now_v7().to_string(),
        name: "admin".into(),
        role: Role::Admin,
        groups: Vec::new(),
        token_hash: auth::token_hash(&token),
    };
    let audit = AuditRecord {
        actor_id: None,
        actor_name: "system".into(),
        action: "staff.create".into(),
        target: Some(staff.id.clone()),
        details: serde_json::json!({"name": "admin", "role": "admin", "reason": "first start"}),
        request_id: None,
    };
    match store.create_staff(&staff, &audit).await {
        Ok(_) => {}
        // Another server sharing the database created it first.
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let path = data_dir.join("admin.token");
    write_private(&path, &format!("{token}\n"))?;
    Ok(Some(path))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
