//! What `kyc-admin` prints: aligned text for people, or exactly one JSON
//! document with `--json`.

use kyc_core::api::{
    AuditEntry, BeginResponse, Company, CompanyCredentials, Health, Page, SessionSummary,
    StaffAccount, StaffCredentials, StaffSession,
};
use serde::Serialize;

pub struct Output {
    json: bool,
}

/// Prints rows as columns padded to the widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// With `--json`, prints `value` and returns true.
    fn as_json<T: Serialize>(&self, value: &T) -> bool {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(err) => eprintln!("kyc-admin: cannot print JSON: {err}"),
            }
        }
        self.json
    }

    pub fn health(&self, health: &Health) {
        if !self.as_json(health) {
            println!(
                "{} (version {}, database {})",
                health.status, health.version, health.database
            );
        }
    }

    pub fn migrated(&self, target: &str) {
        if !self.as_json(&serde_json::json!({"migrated": target})) {
            println!("database schema is up to date: {target}");
        }
    }

    pub fn company(&self, company: &Company) {
        if !self.as_json(company) {
            self.companies_text(std::slice::from_ref(company));
        }
    }

    pub fn companies(&self, companies: &[Company]) {
        if !self.as_json(&companies) {
            self.companies_text(companies);
        }
    }

    fn companies_text(&self, companies: &[Company]) {
        let rows: Vec<Vec<String>> = companies
            .iter()
            .map(|c| {
                vec![
                    c.id.clone(),
                    c.name.clone(),
                    c.key_hint.clone(),
                    if c.hmac { "yes" } else { "no" }.into(),
                    if c.disabled { "disabled" } else { "enabled" }.into(),
                    format!("{}s/{}s", c.link_ttl_secs, c.session_time_secs),
                ]
            })
            .collect();
        table(
            &["ID", "NAME", "KEY", "HMAC", "STATE", "LINK/SESSION"],
            &rows,
        );
    }

    pub fn credentials(&self, credentials: &CompanyCredentials) {
        if self.as_json(credentials) {
            return;
        }
        self.companies_text(std::slice::from_ref(&credentials.company));
        if let Some(key) = &credentials.company_key {
            println!("\ncompany_key: {key}");
        }
        if let Some(secret) = &credentials.secret_key {
            println!("secret_key:  {secret}");
        }
        if credentials.company_key.is_some() || credentials.secret_key.is_some() {
            println!("(shown once: store it now)");
        }
    }

    pub fn account(&self, account: &StaffAccount) {
        if !self.as_json(account) {
            self.accounts_text(std::slice::from_ref(account));
        }
    }

    pub fn accounts(&self, accounts: &[StaffAccount]) {
        if !self.as_json(&accounts) {
            self.accounts_text(accounts);
        }
    }

    fn accounts_text(&self, accounts: &[StaffAccount]) {
        let rows: Vec<Vec<String>> = accounts
            .iter()
            .map(|a| {
                vec![
                    a.id.clone(),
                    a.name.clone(),
                    a.role.as_str().into(),
                    if a.groups.is_empty() {
                        "-".into()
                    } else {
                        a.groups.join(",")
                    },
                    if a.disabled { "disabled" } else { "enabled" }.into(),
                ]
            })
            .collect();
        table(&["ID", "NAME", "ROLE", "GROUPS", "STATE"], &rows);
    }

    pub fn staff_credentials(&self, credentials: &StaffCredentials) {
        if !self.as_json(credentials) {
            self.accounts_text(std::slice::from_ref(&credentials.account));
            println!("\ntoken: {}\n(shown once: store it now)", credentials.token);
        }
    }

    pub fn begin(&self, begin: &BeginResponse) {
        if self.as_json(begin) {
            return;
        }
        println!("session_token: {}", begin.session_token);
        println!("session_url:   {}", begin.session_url);
        println!("expires_at:    {}", begin.expires_at.to_rfc3339());
        for warning in &begin.warnings {
            println!("warning: {}: {}", warning.path, warning.message);
        }
    }

    pub fn sessions(&self, page: &Page<SessionSummary>) {
        if self.as_json(page) {
            return;
        }
        let rows: Vec<Vec<String>> = page
            .items
            .iter()
            .map(|s| {
                vec![
                    s.session_id.clone(),
                    s.status.as_str().into(),
                    or_dash(s.name.as_deref()),
                    or_dash(s.client_user_id.as_deref()),
                    or_dash(s.group_id.as_deref()),
                    s.created_at.to_rfc3339(),
                ]
            })
            .collect();
        table(
            &["ID", "STATUS", "NAME", "CLIENT USER", "GROUP", "CREATED"],
            &rows,
        );
        if let Some(cursor) = &page.next_cursor {
            println!("\nmore: --cursor {cursor}");
        }
    }

    pub fn session(&self, session: &StaffSession) {
        if self.as_json(session) {
            return;
        }
        let r = &session.result;
        println!("session   {}", r.session_id);
        println!(
            "company   {} ({})",
            session.company_name, session.company_id
        );
        println!("status    {}", r.status.as_str());
        println!("name      {}", or_dash(r.name.as_deref()));
        println!("client    {}", or_dash(r.client_user_id.as_deref()));
        println!("group     {}", or_dash(r.group_id.as_deref()));
        println!("created   {}", r.created_at.to_rfc3339());
        println!("expires   {}", r.expires_at.to_rfc3339());
        if let Some(started) = r.started_at {
            println!("started   {}", started.to_rfc3339());
        }
        println!("flow:");
        for step in &r.flow {
            println!("  {:<28} {:<24} {:?}", step.key, step.step_type, step.state);
            for sub in &step.steps {
                println!("    {:<26} {:<24} {:?}", sub.key, sub.step_type, sub.state);
            }
        }
    }

    pub fn audit(&self, page: &Page<AuditEntry>) {
        if self.as_json(page) {
            return;
        }
        let rows: Vec<Vec<String>> = page
            .items
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.at.to_rfc3339(),
                    e.actor_name.clone(),
                    e.action.clone(),
                    or_dash(e.target.as_deref()),
                ]
            })
            .collect();
        table(&["SEQ", "AT", "ACTOR", "ACTION", "TARGET"], &rows);
        if let Some(cursor) = &page.next_cursor {
            println!("\nmore: --cursor {cursor}");
        }
    }
}
