//! `kyc-admin`: the scriptable admin CLI. A client of the staff API (so it
//! works remotely and every action is audited); only `migrate` touches the
//! database itself. Every command takes `--json` and then prints exactly one
//! JSON document on stdout; errors go to stderr with a non-zero exit.

mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kyc_client::{AuditFilter, Client, ClientError, SessionFilter};
use kyc_core::api::{CreateCompany, CreateStaff, Role};
use output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "kyc-admin",
    version,
    about = "Administer a KYC server through its staff API"
)]
struct Cli {
    /// Base URL of the server.
    #[arg(
        long,
        env = "KYC_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Staff token; default: the contents of <data dir>/admin.token.
    #[arg(long, env = "KYC_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Data directory whose admin.token is used when no token is given.
    #[arg(long, env = "KYC_DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Server health.
    Health,
    /// The staff account of the token in use.
    Whoami,
    /// Companies (integrators), their keys and HMAC secrets.
    #[command(subcommand)]
    Company(CompanyCommand),
    /// Staff accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Verification sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create or update the database schema, without starting a server.
    Migrate {
        /// PostgreSQL URL; default: the SQLite database in --data-dir.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CompanyCommand {
    /// Create a company; prints its company_key (and secret) once.
    Create {
        #[arg(long)]
        name: String,
        /// Give it an HMAC secret: its requests must then be signed.
        #[arg(long)]
        hmac: bool,
        /// How long its new sessions may be started, in seconds.
        #[arg(long)]
        link_ttl: Option<i64>,
        /// How long an end user has to finish once started, in seconds.
        #[arg(long)]
        session_time: Option<i64>,
    },
    List,
    Show {
        id: String,
    },
    /// Replace the company key; prints the new one once.
    RotateKey {
        id: String,
    },
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// Set a new HMAC secret; prints it once.
    SetSecret {
        id: String,
    },
    /// Remove the HMAC secret: requests need no signature any more.
    ClearSecret {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Create a staff account; prints its token once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A group the operator belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    List,
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// Replace a staff token; prints the new one once.
    RotateToken {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum SessionCommand {
    /// Create a session from a begin document (flags, steps, name, …).
    Create(CreateSession),
    List(ListSessions),
    /// Show one session, by id or token.
    Show {
        id_or_token: String,
    },
    Cancel {
        id_or_token: String,
    },
}

#[derive(Debug, Args)]
struct CreateSession {
    #[arg(long, required_unless_present = "company_id")]
    company_key: Option<String>,
    #[arg(long, conflicts_with = "company_key")]
    company_id: Option<String>,
    /// A JSON file with the begin document; `-` reads stdin.
    #[arg(long)]
    file: Option<PathBuf>,
    /// How long the link may be started, in seconds (1 hour to 30 days).
    #[arg(long)]
    link_expiry: Option<i64>,
    /// How long the end user has once started, in seconds (5 to 60 minutes).
    #[arg(long)]
    session_time: Option<i64>,
}

#[derive(Debug, Args)]
struct ListSessions {
    #[arg(long)]
    company_id: Option<String>,
    /// created, in_progress, completed, expired or cancelled.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    client_user_id: Option<String>,
    /// ISO 8601, e.g. 2026-01-31T00:00:00Z.
    #[arg(long)]
    created_after: Option<String>,
    #[arg(long)]
    created_before: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    List {
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor_id: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role; use admin or operator"))
}

/// An error for the person at the terminal.
#[derive(Debug)]
struct Failure(String);

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Self(err.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("kyc-admin: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let out = Output::new(cli.json);
    match runtime.block_on(run(cli, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("kyc-admin: {message}");
            ExitCode::FAILURE
        }
    }
}

fn token(cli: &Cli) -> Result<String, Failure> {
    if let Some(token) = cli.token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(token.clone());
    }
    let path = cli.data_dir.join("admin.token");
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            Failure(format!(
                "no token: give --token or KYC_TOKEN, or run where {} is readable ({e})",
                path.display()
            ))
        })
}

async fn run(cli: Cli, out: &Output) -> Result<(), Failure> {
    if let Command::Migrate { database_url } = &cli.command {
        return migrate(database_url.as_deref(), &cli.data_dir, out).await;
    }
    if let Command::Health = &cli.command {
        let client = Client::new(&cli.server, None);
        out.health(&client.health().await?);
        return Ok(());
    }
    let client = Client::new(&cli.server, Some(token(&cli)?));
    match cli.command {
        Command::Health | Command::Migrate { .. } => Ok(()),
        Command::Whoami => {
            out.account(&client.me().await?);
            Ok(())
        }
        Command::Company(command) => company(&client, command, out).await,
        Command::Staff(command) => staff(&client, command, out).await,
        Command::Session(command) => session(&client, command, out).await,
        Command::Audit(AuditCommand::List {
            action,
            actor_id,
            limit,
            cursor,
        }) => {
            let filter = AuditFilter {
                action,
                actor_id,
                cursor,
                limit: Some(limit),
            };
            out.audit(&client.audit(&filter).await?);
            Ok(())
        }
    }
}

async fn company(client: &Client, command: CompanyCommand, out: &Output) -> Result<(), Failure> {
    match command {
        CompanyCommand::Create {
            name,
            hmac,
            link_ttl,
            session_time,
        } => {
            let req = CreateCompany {
                name,
                hmac,
                link_ttl_secs: link_ttl,
                session_time_secs: session_time,
            };
            out.credentials(&client.create_company(&req).await?);
        }
        CompanyCommand::List => out.companies(&client.companies().await?),
        CompanyCommand::Show { id } => out.company(&client.company(&id).await?),
        CompanyCommand::RotateKey { id } => out.credentials(&client.rotate_company_key(&id).await?),
        CompanyCommand::Disable { id } => out.company(&client.disable_company(&id).await?),
        CompanyCommand::Enable { id } => out.company(&client.enable_company(&id).await?),
        CompanyCommand::SetSecret { id } => out.credentials(&client.set_company_secret(&id).await?),
        CompanyCommand::ClearSecret { id } => out.company(&client.clear_company_secret(&id).await?),
    }
    Ok(())
}

async fn staff(client: &Client, command: StaffCommand, out: &Output) -> Result<(), Failure> {
    match command {
        StaffCommand::Create { name, role, groups } => out.staff_credentials(
            &client
                .create_staff(&CreateStaff { name, role, groups })
                .await?,
        ),
        StaffCommand::List => out.accounts(&client.staff_accounts().await?),
        StaffCommand::Disable { id } => out.account(&client.disable_staff(&id).await?),
        StaffCommand::Enable { id } => out.account(&client.enable_staff(&id).await?),
        StaffCommand::RotateToken { id } => {
            out.staff_credentials(&client.rotate_staff_token(&id).await?)
        }
    }
    Ok(())
}

fn read_document(path: Option<&Path>) -> Result<serde_json::Value, Failure> {
    let text = match path {
        None => return Ok(serde_json::json!({})),
        Some(p) if p == Path::new("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Failure(format!("cannot read stdin: {e}")))?;
            text
        }
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Failure(format!("cannot read {}: {e}", p.display())))?,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure(format!(
            "{} is not valid JSON: {e}",
            path.map_or("input".into(), |p| p.display().to_string())
        ))
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Failure("the begin document must be a JSON object".into()))
    }
}

async fn session(client: &Client, command: SessionCommand, out: &Output) -> Result<(), Failure> {
    match command {
        SessionCommand::Create(args) => {
            let mut document = read_document(args.file.as_deref())?;
            if let Some(object) = document.as_object_mut() {
                if let Some(key) = args.company_key {
                    object.insert("company_key".into(), key.into());
                }
                if let Some(id) = args.company_id {
                    object.insert("company_id".into(), id.into());
                }
                if let Some(secs) = args.link_expiry {
                    object.insert("link_expiry_secs".into(), secs.into());
                }
                if let Some(secs) = args.session_time {
                    object.insert("session_time_secs".into(), secs.into());
                }
            }
            out.begin(&client.create_session(&document).await?);
        }
        SessionCommand::List(args) => {
            let filter = SessionFilter {
                company_id: args.company_id,
                status: args.status,
                group_id: args.group,
                client_user_id: args.client_user_id,
                created_after: args.created_after,
                created_before: args.created_before,
                cursor: args.cursor,
                limit: Some(args.limit),
            };
            out.sessions(&client.sessions(&filter).await?);
        }
        SessionCommand::Show { id_or_token } => out.session(&client.session(&id_or_token).await?),
        SessionCommand::Cancel { id_or_token } => {
            out.session(&client.cancel_session(&id_or_token).await?)
        }
    }
    Ok(())
}

async fn migrate(database_url: Option<&str>, data_dir: &Path, out: &Output) -> Result<(), Failure> {
    use kyc_core::store::{Durability, Store};
    let (store, target) = match database_url.filter(|u| !u.is_empty()) {
        Some(url) => (Store::open_postgres(url, 2).await, "postgresql".to_owned()),
        None => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| Failure(format!("cannot create {}: {e}", data_dir.display())))?;
            let path = data_dir.join("kyc.db");
            (
                Store::open_sqlite(&path, Durability::Full).await,
                path.display().to_string(),
            )
        }
    };
    let store = store.map_err(|e| Failure(format!("migration of {target} failed: {e}")))?;
    store.close().await;
    out.migrated(&target);
    Ok(())
}
