//! `ClaimCheckResolve` (`strata.ClaimCheckResolve`): the inverse of `ClaimCheck`. A record
//! carrying a claim ticket gets its payload back from the claim store, verified.
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | `field` | `value` | `value` or `key`: which ticket to resolve (see `ClaimCheck`) |
//! | `max.bytes` | `67108864` | largest payload resolved; a bigger one fails the record |
//!
//! A record is a ticket when it carries the field's `claimcheck.version` header
//! (`claimcheck.key.version` for keys); other records pass unchanged. Tickets written by the
//! HTTP gateway resolve the same way. The ticket is read with
//! `strata_claimcheck::ClaimTicket::from_record` (unknown versions are rejected).
//!
//! # Integrity
//! The payload is streamed from the store through `strata_claimcheck`'s `BodyVerifier`: its
//! length must equal the ticket's `size` and its SHA-256 the ticket's `sha256`. Any difference
//! fails the record with [`TransformError::HashMismatch`] / [`TransformError::SizeMismatch`];
//! wrong bytes are never returned. `max.bytes` is checked against the ticket's size before
//! downloading and against the bytes read while streaming, so memory stays bounded by it.
//!
//! On success the field's ticket headers are removed and the field holds the payload.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use strata_claimcheck::ticket::parse_sha256_hex;
use strata_claimcheck::upload::{BodyExpectations, BodyVerifier};
use strata_claimcheck::{ClaimError, ClaimStore, ClaimTicket};

use super::claim_check::TicketField;
use crate::config::Settings;
use crate::error::{ConfigError, TransformError};
use crate::record::ConnectRecord;
use crate::transform::{Transform, TransformContext, TransformKind};

/// Replaces claim tickets by their verified payloads.
#[derive(Debug, Clone)]
pub struct ClaimCheckResolve {
    alias: String,
    pub field: TicketField,
    pub max_bytes: u64,
    /// `transforms.<alias>.max.bytes`, for error messages.
    max_bytes_key: String,
    store: ClaimStore,
}

impl ClaimCheckResolve {
    pub const SETTINGS: &'static [&'static str] = &["field", "max.bytes"];
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

    pub(crate) fn configure(
        settings: &mut Settings,
        ctx: &TransformContext,
    ) -> Result<Self, ConfigError> {
        let field = TicketField::from_setting(settings)?;
        let max_bytes = settings.u64_or("max.bytes", Self::DEFAULT_MAX_BYTES)?;
        Ok(Self {
            alias: settings.alias().to_string(),
            field,
            max_bytes,
            max_bytes_key: settings.key("max.bytes"),
            store: ctx.require_claim_store(settings)?,
        })
    }

    fn invalid_ticket(&self, reason: impl Into<String>) -> TransformError {
        TransformError::InvalidTicket {
            transform: self.alias.clone(),
            reason: reason.into(),
        }
    }

    /// The ticket of `record`'s field, `None` when the record carries no ticket for it.
    fn read_ticket(&self, record: &ConnectRecord) -> Result<Option<ClaimTicket>, TransformError> {
        let version_header = self
            .field
            .header_name(strata_claimcheck::ticket::header::VERSION);
        if !record.has_header(&version_header) {
            return Ok(None);
        }
        let mut contract_headers: Vec<(&'static str, &[u8])> = Vec::new();
        for (name, value) in &record.headers {
            let Some(contract) = self.field.contract_name(name) else {
                continue;
            };
            let value = value
                .as_ref()
                .ok_or_else(|| self.invalid_ticket(format!("header {name} is null")))?;
            contract_headers.push((contract, value));
        }
        let json = self.field.get(record).map_or(&[][..], |b| &b[..]);
        ClaimTicket::from_record(contract_headers, json)
            .map(Some)
            .map_err(|e| self.invalid_ticket(e.to_string()))
    }

    /// Downloads and verifies the payload of `ticket`.
    async fn fetch_verified(&self, ticket: &ClaimTicket) -> Result<Bytes, TransformError> {
        let claim = ticket.id;
        let too_large = |size: u64| TransformError::PayloadTooLarge {
            transform: self.alias.clone(),
            claim,
            size,
            limit: self.max_bytes,
            setting: self.max_bytes_key.clone(),
        };
        if ticket.size > self.max_bytes {
            return Err(too_large(ticket.size));
        }
        let sha256 = parse_sha256_hex(&ticket.sha256)
            .ok_or_else(|| self.invalid_ticket("sha256 is not 64 hex digits"))?;
        let expect = BodyExpectations {
            size: Some(ticket.size),
            sha256: Some(sha256),
            max_bytes: self.max_bytes,
        };
        let classify = |e: ClaimError| match e {
            ClaimError::PayloadTooLarge { .. } => too_large(self.max_bytes.saturating_add(1)),
            ClaimError::SizeMismatch { expected, actual } => TransformError::SizeMismatch {
                transform: self.alias.clone(),
                claim,
                expected,
                actual,
            },
            ClaimError::DigestMismatch { expected, actual } => TransformError::HashMismatch {
                transform: self.alias.clone(),
                claim,
                expected,
                actual,
            },
            e if e.is_not_found() => TransformError::PayloadMissing {
                transform: self.alias.clone(),
                claim,
            },
            source => TransformError::Store {
                transform: self.alias.clone(),
                source,
            },
        };
        let mut stream = self
            .store
            .read_payload(claim, None)
            .await
            .map_err(classify)?;
        let mut verifier = BodyVerifier::default();
        let mut payload = BytesMut::with_capacity(usize::try_from(ticket.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            verifier.update(&chunk, &expect).map_err(classify)?;
            payload.extend_from_slice(&chunk);
        }
        verifier.finish(&expect).map_err(classify)?;
        Ok(payload.freeze())
    }
}

#[async_trait]
impl Transform for ClaimCheckResolve {
    async fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let mut record = record;
        let Some(ticket) = self.read_ticket(&record)? else {
            return Ok(Some(record));
        };
        let payload = self.fetch_verified(&ticket).await?;
        self.field.set(&mut record, payload);
        let field = self.field;
        record.remove_headers_where(|name| field.contract_name(name).is_some());
        Ok(Some(record))
    }

    fn type_name(&self) -> &'static str {
        TransformKind::ClaimCheckResolve.name()
    }

    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("field".to_string(), self.field.as_str().to_string()),
            ("max.bytes".to_string(), self.max_bytes.to_string()),
        ])
    }
}
