//! Produce through a topic's transform chain, recording every new claim's position.
//!
//! ```text
//!  records ─► chain of the topic? no ─► PartitionLog::append (unchanged path)
//!               │ yes: spawned task (survives a dropped connection, so positions are finished)
//!               ▼
//!  transform_batches (batch.rs) ─► new claims? ─► PositionBook::record_pending (min_offset =
//!    │ a record or batch fails        log end offset now) ─► PartitionLog::append
//!    └─► delete the claims created so far         ─► record_appended(offset = base + index)
//!                               ├─ error or idempotent duplicate ─► forget + delete the claims
//!                               └─ written, fsync failed (NotDurable) ─► claims kept (pending)
//! ```
//!
//! Crash consistency: a crash after the payload upload and before the pending position leaves
//! a claim without position, collected by the claim GC after `claimcheck.gc.grace`; after the
//! pending position, liveness rests on `min_offset` (claims/live.rs). The producer was not
//! acknowledged in either case, and its retry writes a new claim.

use std::sync::Arc;

use bytes::Bytes;
use strata_claimcheck::ClaimId;

use super::SmtEngine;
use super::batch::{BatchError, transform_batches};
use crate::log::{AppendResult, Durability, LogError, PartitionLog};

impl From<BatchError> for LogError {
    fn from(error: BatchError) -> Self {
        match error {
            BatchError::Corrupt(reason) => LogError::CorruptMessage(reason),
            BatchError::TooLarge { size, max } => LogError::MessageTooLarge {
                size,
                max,
                config: "max.message.bytes",
            },
            e @ BatchError::IdempotentDrop { .. } => LogError::InvalidRecord(e.to_string()),
            BatchError::Transform(e) if e.is_retryable() => LogError::Storage {
                context: format!("running transform {}", e.transform()),
                source: std::io::Error::other(e.to_string()),
            },
            BatchError::Transform(e) => LogError::InvalidRecord(e.to_string()),
            BatchError::Decode(e) => e,
        }
    }
}

/// `PartitionLog::append`, through the topic's transform chain when it has one.
pub async fn append(
    engine: Option<&Arc<SmtEngine>>,
    log: &Arc<PartitionLog>,
    records: Bytes,
    durability: Durability,
) -> Result<AppendResult, LogError> {
    let Some(engine) = engine else {
        return log.append(records, durability).await;
    };
    let Some(chain) = engine.produce_chain(log)? else {
        return log.append(records, durability).await;
    };
    let engine = engine.clone();
    let log = log.clone();
    let task = tokio::spawn(async move {
        let max = log.config().max_message_bytes;
        let mut created = Vec::new();
        let transformed = transform_batches(
            &records,
            max,
            &chain,
            log.topic(),
            log.partition(),
            &mut created,
        )
        .await;
        let out = match transformed {
            Ok(out) => out,
            Err(error) => {
                // Payloads of the records before the one that failed: no ticket will point to them.
                engine.discard(&created).await;
                return Err(error.into());
            }
        };
        drop(records);
        let ids: Vec<ClaimId> = out.new_claims.iter().map(|(id, _)| *id).collect();
        if out.record_count == 0 {
            let end = log.log_end_offset();
            return Ok(AppendResult {
                base_offset: end,
                last_offset: end - 1,
                log_append_time: -1,
                log_start_offset: log.log_start_offset(),
                duplicate: false,
            });
        }
        if let Some(book) = &engine.book {
            for id in &ids {
                if let Err(error) = book.record_pending(*id, &log).await {
                    engine.discard(&ids).await;
                    return Err(LogError::Storage {
                        context: "recording claim positions".into(),
                        source: std::io::Error::other(error.to_string()),
                    });
                }
            }
        }
        let result = log.append(out.records, durability).await;
        match &result {
            Ok(appended) if !appended.duplicate => {
                if let Some(book) = &engine.book {
                    for (id, index) in &out.new_claims {
                        book.record_appended(*id, &log, appended.base_offset + index)
                            .await;
                    }
                }
                if !ids.is_empty() {
                    tracing::debug!(
                        topic = log.topic(),
                        partition = log.partition(),
                        base_offset = appended.base_offset,
                        claims = ids.len(),
                        "appended through the transform chain"
                    );
                }
            }
            // Written but the fsync failed: the tickets may be read (and survive), so their
            // payloads stay; their pending positions keep them live (`claims/live.rs`).
            Err(LogError::NotDurable { .. }) => tracing::warn!(
                topic = log.topic(),
                partition = log.partition(),
                claims = ids.len(),
                "append not made durable; the claims' payloads are kept"
            ),
            // A retry already in the log, or a refused append: the new claims point nowhere.
            _ => engine.discard(&ids).await,
        }
        result
    });
    task.await.unwrap_or_else(|join| {
        Err(LogError::Storage {
            context: "running the transform chain".into(),
            source: std::io::Error::other(join.to_string()),
        })
    })
}

impl SmtEngine {
    /// Forgets positions and deletes payloads of claims whose ticket was not appended.
    async fn discard(&self, ids: &[ClaimId]) {
        for id in ids {
            if let Some(book) = &self.book {
                book.forget(*id).await;
            }
            if let Some(claims) = &self.claims
                && let Err(error) = claims.delete_claim(*id).await
            {
                tracing::warn!(claim = %id, %error, "deleting an unappended claim failed; the claim GC will");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::TryStreamExt;
    use object_store::ObjectStore;
    use strata_claimcheck::{ClaimCheckConfig, ClaimStore};
    use strata_format::testing::BatchBuilder;

    use super::*;
    use crate::log::{LogManager, LogManagerConfig};
    use crate::smt::test_support::{batch_of, fixture, record};

    /// A batch whose append was written but not fsynced may be read (and survive): the
    /// payloads its tickets point to are kept.
    #[tokio::test]
    async fn payloads_of_an_append_whose_fsync_failed_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let configs = BTreeMap::from([
            ("transforms".to_string(), "cc".to_string()),
            ("transforms.cc.type".to_string(), "ClaimCheck".to_string()),
            (
                "transforms.cc.threshold.bytes".to_string(),
                "16".to_string(),
            ),
        ]);
        manager.create_topic("t", 1, configs, false).unwrap();
        let log = manager.partition("t", 0).unwrap();
        let objects = Arc::new(object_store::memory::InMemory::new());
        let store = ClaimStore::new(objects.clone(), "c").unwrap();
        let engine = Arc::new(SmtEngine::with_claims(store, ClaimCheckConfig::default()));
        let large = BatchBuilder::new()
            .records(2)
            .values(|offset| Bytes::from(format!("a value well over 16 bytes, {offset}")))
            .build();

        log.fail_next_fsync();
        let error = append(Some(&engine), &log, large, Durability::Fsync)
            .await
            .unwrap_err();
        assert!(matches!(error, LogError::NotDurable { .. }), "{error}");
        assert_eq!(log.log_end_offset(), 2, "the tickets were written");
        let payloads: Vec<String> = objects
            .list(None)
            .map_ok(|o| o.location.to_string())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .filter(|key| key.ends_with("/payload"))
            .collect();
        assert_eq!(payloads.len(), 2, "{payloads:?}");
        manager.shutdown().await.ok();
    }

    #[tokio::test]
    async fn a_failing_record_deletes_the_payloads_of_those_before_it() {
        let f = fixture(&[]).await;
        let big = vec![b'x'; 4096];
        // Two batches of big records, the last record carrying a reserved ticket header: the
        // chain uploads the first three payloads, then fails.
        let records = [
            batch_of(vec![record(0, 0, &big, &[]), record(1, 0, &big, &[])]),
            batch_of(vec![
                record(0, 0, &big, &[]),
                record(1, 0, &big, &[("claimcheck.id", b"x")]),
            ]),
        ]
        .concat();
        let error =
            crate::smt::append(Some(&f.engine), &f.log, records.into(), Durability::Written)
                .await
                .unwrap_err();
        assert!(
            matches!(&error, LogError::InvalidRecord(m) if m.contains("reserved ticket header")),
            "{error}"
        );
        let left: Vec<_> = f.store.list_claim_objects().try_collect().await.unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(f.log.log_end_offset(), 0);
    }
}
