//! Strata's claim-check gateway: payloads too big for a topic go to the object store through a
//! streaming HTTP API, and a small, versioned claim ticket goes into the topic.
//!
//! For the broker:
//! * build a [`ClaimStore`] over the `object_store` built from `--remote` (+ prefix), implement
//!   [`TicketSink`] over the log, and call [`ClaimCheckService::new`] with a
//!   [`ClaimCheckConfig`]; mount [`ClaimCheckService::router`] on the HTTP listener;
//! * implement [`LiveClaims`] and run [`lifecycle::spawn_maintenance`] (or
//!   [`lifecycle::collect_garbage`] for `strata claims gc [--dry-run]`);
//! * `strata claim put|get` call [`cli::put_file`] / [`cli::get_file`].
//!
//! Consumers resolve tickets with [`client`]; chunk-mode payloads with [`reassemble`].

pub mod chunked;
pub mod cli;
pub mod client;
pub mod config;
pub mod csv_split;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod reassemble;
pub mod resumable;
pub mod service;
pub mod sink;
pub mod store;
pub mod ticket;
pub mod upload;

pub use config::ClaimCheckConfig;
pub use error::{ClaimError, CsvRowError, Result, SinkError};
pub use service::ClaimCheckService;
pub use sink::{LiveClaims, OutRecord, TicketSink};
pub use store::{ClaimMeta, ClaimStore, ObjectKey};
pub use ticket::{ClaimId, ClaimReceipt, ClaimTicket, RecordPosition, UploadId};
