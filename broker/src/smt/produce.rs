//! Produce through a topic's transform chain, recording every new claim's position.
//!
//! ```text
//!  records ─► chain of the topic? no ─► PartitionLog::append (unchanged path)
//!               │ yes: spawned task (survives a dropped connection, so positions are finished)
//!               ▼
//!  transform_batches (batch.rs) ─► new claims? ─► PositionBook::record_pending (min_offset =
//!    │ a record or batch fails        log end offset now) ─► PartitionLog::append
//!    └─► delete the claims created so far         ─► record_appended(offset = base + index)
//!                               └─ error or idempotent duplicate ─► forget + delete the claims
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
    use futures::TryStreamExt;

    use crate::log::{Durability, LogError};
    use crate::smt::test_support::{batch_of, fixture, record};

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
