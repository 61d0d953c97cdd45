-- Companies, staff, sessions and the audit log. Instants are unix milliseconds;
-- JSON documents are TEXT. Kept column-for-column equal to postgres/0001_init.sql.

CREATE TABLE companies (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    key_hash          TEXT NOT NULL UNIQUE,
    key_hint          TEXT NOT NULL,
    secret_sealed     TEXT,
    disabled          BOOLEAN NOT NULL DEFAULT 0,
    link_ttl_secs     INTEGER NOT NULL,
    session_time_secs INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE staff (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    groups     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    disabled   BOOLEAN NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    token_hash        TEXT NOT NULL UNIQUE,
    company_id        TEXT NOT NULL REFERENCES companies (id),
    status            TEXT NOT NULL,
    spec              TEXT NOT NULL,
    progress          TEXT NOT NULL,
    name              TEXT,
    client_user_id    TEXT,
    group_id          TEXT,
    schedule_start    INTEGER,
    schedule_end      INTEGER,
    link_expires_at   INTEGER NOT NULL,
    session_time_secs INTEGER NOT NULL,
    started_at        INTEGER,
    completed_at      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    created_by        TEXT,
    version           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_company ON sessions (company_id, id);
CREATE INDEX sessions_by_client_user ON sessions (client_user_id);
CREATE INDEX sessions_by_group ON sessions (group_id, id);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor_id   TEXT,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    details    TEXT NOT NULL,
    request_id TEXT
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
