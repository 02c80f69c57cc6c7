//! `--verify-claims`: for each claim ticket in the exported range, stream its payload from the
//! claim store and compare size and SHA-256 with the ticket. A missing or different payload is
//! a finding (listed in the manifest, the export fails at the end); a store that cannot be
//! reached is an error that stops the export (a re-run resumes).

use futures::StreamExt;
use sha2::{Digest, Sha256};
use strata_claimcheck::ticket::ClaimId;
use strata_claimcheck::{ClaimError, ClaimStore};

use super::{ClaimFields, ExportError};

pub struct ClaimChecker {
    store: ClaimStore,
}

impl ClaimChecker {
    pub fn new(store: ClaimStore) -> Self {
        Self { store }
    }

    /// `None` when the payload matches its ticket, else what is wrong with it.
    pub async fn check(&self, claim: &ClaimFields) -> Result<Option<String>, ExportError> {
        let id: ClaimId = match claim.id.parse() {
            Ok(id) => id,
            Err(e) => return Ok(Some(format!("invalid claim id: {e}"))),
        };
        let not_found = |e: &ClaimError| {
            matches!(
                e,
                ClaimError::NotFound(_) | ClaimError::Store(object_store::Error::NotFound { .. })
            )
        };
        let mut stream = match self.store.read_payload(id, None).await {
            Ok(stream) => stream,
            Err(e) if not_found(&e) => return Ok(Some("payload object is missing".into())),
            Err(e) => return Err(ExportError::Claims(format!("claim {id}: {e}"))),
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ExportError::Claims(format!("claim {id}: {e}")))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        let sha = hex::encode(hasher.finalize());
        if size != claim.size {
            return Ok(Some(format!(
                "payload is {size} bytes, the ticket says {}",
                claim.size
            )));
        }
        if sha != claim.sha256 {
            return Ok(Some(format!(
                "payload SHA-256 is {sha}, the ticket says {}",
                claim.sha256
            )));
        }
        Ok(None)
    }
}
