-- Captures the end user uploads for a step (document sides, selfies,
-- liveness frames, files), kept in the blob store under blob_key; and the
-- verification jobs that score them. A capture belongs to no job until the
-- step is submitted; then every waiting capture of the step joins the job.

CREATE TABLE verification_jobs (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    step_key    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    -- queued, done
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX verification_jobs_by_state ON verification_jobs (state, created_at);
CREATE INDEX verification_jobs_by_step ON verification_jobs (session_id, step_key);

CREATE TABLE captures (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    step_key    TEXT NOT NULL,
    -- front, back, selfie, frame, photo, file
    kind        TEXT NOT NULL,
    -- Active liveness: the index of the challenge the frame answers.
    challenge   INTEGER,
    media_type  TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    blob_key    TEXT NOT NULL,
    job_id      TEXT REFERENCES verification_jobs (id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX captures_by_step ON captures (session_id, step_key, job_id);
