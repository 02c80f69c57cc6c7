//! `ClaimCheck` (`strata.ClaimCheck`): externalizes a large value (or key) to the claim store
//! and puts a claim ticket in its place, the same ticket the HTTP gateway writes
//! (`strata_claimcheck::ClaimTicket`, version 1): the `claimcheck.*` headers are appended and
//! the value becomes the ticket's JSON.
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | `field` | `value` | `value` or `key`: which part of the record to externalize |
//! | `threshold.bytes` | `1048576` | externalize when the field is at least this many bytes |
//! | `content.type` | `application/octet-stream` | the ticket's `content_type` |
//!
//! Null fields and fields below the threshold pass unchanged.
//!
//! # Key tickets
//! With `field=key` the key becomes the ticket JSON and the headers are named
//! `claimcheck.key.version`, `claimcheck.key.id`, ... so a record can carry a key ticket and a
//! value ticket at once. Replacing the key changes the partition a key-hashing partitioner picks;
//! on the broker's produce path the partition is chosen before the chain runs. The claim GC's
//! live set (`strata_claimcheck::LiveClaims`) must count `claimcheck.key.id` as well as
//! `claimcheck.id`, or key payloads are collected while their tickets live.
//!
//! # Store layout and lifecycle
//! The payload goes to `<prefix>/claims/<id>/payload` and a `meta.json` sidecar without a ticket
//! position, through `strata_claimcheck`'s store and streaming writer (SHA-256 computed on the
//! way; multipart above `claimcheck.multipart.part.bytes`). The claim GC deletes a payload once
//! no live ticket points to it and it is older than `claimcheck.gc.grace`, so the transformed
//! record must be appended within that grace (the produce path appends at once).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use strata_claimcheck::store::ObjectKey;
use strata_claimcheck::ticket::{TICKET_VERSION, header, now_rfc3339};
use strata_claimcheck::upload::{BodyExpectations, write_object_streaming};
use strata_claimcheck::{ClaimError, ClaimId, ClaimMeta, ClaimStore, ClaimTicket};
use tracing::{debug, warn};

use crate::config::Settings;
use crate::error::{ConfigError, TransformError};
use crate::record::ConnectRecord;
use crate::transform::{Transform, TransformContext, TransformKind};

/// The header names of the ticket contract, in contract order.
pub(crate) const CONTRACT_HEADERS: [&str; 6] = [
    header::VERSION,
    header::ID,
    header::URI,
    header::SIZE,
    header::SHA256,
    header::CONTENT_TYPE,
];

/// Which part of a record a claim-check transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketField {
    Value,
    Key,
}

impl TicketField {
    pub(crate) const CHOICES: &'static [&'static str] = &["value", "key"];

    pub(crate) fn from_setting(settings: &mut Settings) -> Result<Self, ConfigError> {
        Ok(match settings.choice_or("field", Self::CHOICES, "value")? {
            "key" => TicketField::Key,
            _ => TicketField::Value,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TicketField::Value => "value",
            TicketField::Key => "key",
        }
    }

    /// The record header carrying contract header `contract` for this field:
    /// `claimcheck.id` for values, `claimcheck.key.id` for keys.
    pub fn header_name(self, contract: &str) -> String {
        match self {
            TicketField::Value => contract.to_string(),
            TicketField::Key => contract.replacen("claimcheck.", "claimcheck.key.", 1),
        }
    }

    /// Whether `name` is one of this field's ticket headers; returns the contract name.
    pub(crate) fn contract_name(self, name: &str) -> Option<&'static str> {
        CONTRACT_HEADERS
            .into_iter()
            .find(|contract| self.header_name(contract) == name)
    }

    pub(crate) fn get(self, record: &ConnectRecord) -> Option<&Bytes> {
        match self {
            TicketField::Value => record.value.as_ref(),
            TicketField::Key => record.key.as_ref(),
        }
    }

    pub(crate) fn set(self, record: &mut ConnectRecord, bytes: Bytes) {
        match self {
            TicketField::Value => record.value = Some(bytes),
            TicketField::Key => record.key = Some(bytes),
        }
    }
}

/// Externalizes fields of at least `threshold_bytes` to the claim store.
#[derive(Debug, Clone)]
pub struct ClaimCheck {
    alias: String,
    pub field: TicketField,
    pub threshold_bytes: u64,
    pub content_type: String,
    store: ClaimStore,
    gateway: strata_claimcheck::ClaimCheckConfig,
}

impl ClaimCheck {
    pub const SETTINGS: &'static [&'static str] = &["field", "threshold.bytes", "content.type"];
    pub const DEFAULT_THRESHOLD_BYTES: u64 = 1_048_576;
    pub const DEFAULT_CONTENT_TYPE: &'static str = "application/octet-stream";

    pub(crate) fn configure(
        settings: &mut Settings,
        ctx: &TransformContext,
    ) -> Result<Self, ConfigError> {
        let field = TicketField::from_setting(settings)?;
        let threshold_bytes = settings.u64_or("threshold.bytes", Self::DEFAULT_THRESHOLD_BYTES)?;
        let content_type = settings
            .optional("content.type")
            .unwrap_or_else(|| Self::DEFAULT_CONTENT_TYPE.to_string());
        if content_type.trim().is_empty() || content_type.chars().any(char::is_control) {
            return Err(settings.invalid(
                "content.type",
                &content_type,
                "expected a media type such as application/octet-stream",
            ));
        }
        Ok(Self {
            alias: settings.alias().to_string(),
            field,
            threshold_bytes,
            content_type,
            store: ctx.require_claim_store(settings)?,
            gateway: ctx.gateway().clone(),
        })
    }

    fn store_error(&self, source: ClaimError) -> TransformError {
        TransformError::Store {
            transform: self.alias.clone(),
            source,
        }
    }

    /// Stores `payload` and its sidecar; returns the ticket.
    async fn externalize(&self, topic: &str, payload: Bytes) -> Result<ClaimTicket, ClaimError> {
        let id = ClaimId::random();
        let size = payload.len() as u64;
        let body = futures::stream::once(async move { Ok(payload) }).boxed();
        let expect = BodyExpectations {
            size: Some(size),
            sha256: None,
            max_bytes: u64::MAX,
        };
        let stored = write_object_streaming(
            self.store.object_store(),
            &self.store.path(ObjectKey::ClaimPayload(id)),
            body,
            self.gateway.multipart_part_bytes.max(1),
            self.gateway.multipart_concurrency.max(1),
            &expect,
        )
        .await?;
        let ticket = ClaimTicket {
            version: TICKET_VERSION,
            id,
            topic: topic.to_string(),
            uri: self.gateway.claim_uri(&id),
            size: stored.size,
            sha256: stored.sha256_hex(),
            content_type: self.content_type.clone(),
            created_at: now_rfc3339(),
        };
        let meta = ClaimMeta::from_ticket(&ticket, None);
        if let Err(e) = self.store.put_json(ObjectKey::ClaimMeta(id), &meta).await {
            if let Err(cleanup) = self.store.delete_claim(id).await {
                warn!(claim = %id, error = %cleanup, "deleting payload without sidecar failed; the claim GC will");
            }
            return Err(e);
        }
        Ok(ticket)
    }
}

#[async_trait]
impl Transform for ClaimCheck {
    async fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let mut record = record;
        let payload = match self.field.get(&record) {
            Some(bytes) if bytes.len() as u64 >= self.threshold_bytes => bytes.clone(),
            _ => return Ok(Some(record)),
        };
        if let Some((name, _)) = record
            .headers
            .iter()
            .find(|(name, _)| self.field.contract_name(name).is_some())
        {
            return Err(TransformError::ReservedHeader {
                transform: self.alias.clone(),
                header: name.clone(),
            });
        }
        let ticket = self
            .externalize(&record.topic, payload)
            .await
            .map_err(|e| self.store_error(e))?;
        debug!(transform = %self.alias, claim = %ticket.id, topic = %record.topic,
               field = self.field.as_str(), size = ticket.size, "externalized to the claim store");
        self.field.set(&mut record, ticket.to_json());
        for (name, value) in ticket.to_headers() {
            record.add_header(self.field.header_name(&name), Some(value));
        }
        Ok(Some(record))
    }

    fn type_name(&self) -> &'static str {
        TransformKind::ClaimCheck.name()
    }

    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("field".to_string(), self.field.as_str().to_string()),
            (
                "threshold.bytes".to_string(),
                self.threshold_bytes.to_string(),
            ),
            ("content.type".to_string(), self.content_type.clone()),
        ])
    }
}
