//! Where capture bytes live. `object_store` gives one API over a local
//! directory (the embedded default, under the data directory) and, later,
//! S3-compatible stores for several servers; the rest of the server only
//! sees [`Blobs`].

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

#[derive(Debug, thiserror::Error)]
#[error("blob store: {0}")]
pub struct BlobError(String);

impl Blobs {
    /// A store over `dir`, created if needed.
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError(format!("cannot create {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| BlobError(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Writes `bytes` under `key` (atomically: a reader sees all or nothing).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let path = ObjectPath::parse(key).map_err(|e| BlobError(e.to_string()))?;
        self.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| BlobError(format!("cannot store {key}: {e}")))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let path = ObjectPath::parse(key).map_err(|e| BlobError(e.to_string()))?;
        let found = self
            .store
            .get(&path)
            .await
            .map_err(|e| BlobError(format!("cannot read {key}: {e}")))?;
        found
            .bytes()
            .await
            .map_err(|e| BlobError(format!("cannot read {key}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
        blobs
            .put(
                "sessions/s1/doc/c1.jpg",
                Bytes::from_static(b"\xff\xd8\xff"),
            )
            .await
            .unwrap();
        let back = blobs.get("sessions/s1/doc/c1.jpg").await.unwrap();
        assert_eq!(&back[..], b"\xff\xd8\xff");
        assert!(blobs.get("sessions/s1/doc/missing.jpg").await.is_err());
        assert!(dir.path().join("blobs/sessions/s1/doc/c1.jpg").is_file());
    }
}
