//! Group commit for SQLite: sessions created concurrently are written in one
//! transaction, so one fsync makes a whole batch durable. Each caller still
//! gets its own answer; if a batch fails, its sessions are retried one by one
//! so that one bad row cannot fail its neighbours.

use tokio::sync::{mpsc, oneshot};

use super::sessions::insert_session;
use super::{Db, NewSession, StoreError};

/// Sessions per transaction at most.
const MAX_BATCH: usize = 256;

enum Message {
    Insert(Box<NewSession>, oneshot::Sender<Result<(), StoreError>>),
    /// Answered once every earlier message is done.
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub(super) struct SessionWriter {
    tx: Option<mpsc::Sender<Message>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Insert(..) => "Insert",
            Self::Flush(_) => "Flush",
        })
    }
}

impl SessionWriter {
    /// Starts the writer task for SQLite; PostgreSQL needs none.
    pub fn start(db: Db) -> Self {
        match db {
            Db::Sqlite { write, .. } => {
                let (tx, rx) = mpsc::channel(4096);
                tokio::spawn(run(write, rx));
                Self { tx: Some(tx) }
            }
            Db::Postgres(_) => Self { tx: None },
        }
    }

    pub async fn insert(&self, session: NewSession) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Message::Insert(Box::new(session), reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Waits until every session handed in before this call is written.
    pub async fn stop(&self) {
        if let Some(tx) = &self.tx {
            let (reply, done) = oneshot::channel();
            if tx.send(Message::Flush(reply)).await.is_ok() {
                let _ = done.await;
            }
        }
    }
}

async fn run(pool: sqlx::SqlitePool, mut rx: mpsc::Receiver<Message>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Insert(session, reply) => batch.push((*session, reply)),
                Message::Flush(reply) => flushes.push(reply),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(&pool, batch).await;
        }
        for flush in flushes {
            let _ = flush.send(());
        }
    }
}

async fn write_batch(
    pool: &sqlx::SqlitePool,
    batch: Vec<(NewSession, oneshot::Sender<Result<(), StoreError>>)>,
) {
    let specs: Vec<Result<String, StoreError>> = batch
        .iter()
        .map(|(s, _)| serde_json::to_string(&s.spec).map_err(StoreError::corrupt))
        .collect();
    let together = async {
        let mut tx = pool.begin().await?;
        for ((session, _), spec) in batch.iter().zip(&specs) {
            let spec = spec
                .as_ref()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            insert_session!(&mut *tx, session, spec)?;
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    };
    if together.await.is_ok() {
        for (_, reply) in batch {
            let _ = reply.send(Ok(()));
        }
        return;
    }
    for ((session, reply), spec) in batch.into_iter().zip(specs) {
        let result = match spec {
            Ok(spec) => insert_session!(pool, &session, spec)
                .map(|_| ())
                .map_err(StoreError::from),
            Err(err) => Err(err),
        };
        let _ = reply.send(result);
    }
}
