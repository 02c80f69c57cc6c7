//! Strata's claim-check gateway: payloads too big for a topic go to the object store through a
//! streaming HTTP API, and a small, versioned claim ticket goes into the topic.
//!
//! Start at [`ClaimCheckService`] (router constructor) and the traits the broker implements:
//! [`TicketSink`] and [`LiveClaims`].

pub mod config;
pub mod error;
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

mod http {
    pub fn router(_s: crate::ClaimCheckService) -> axum::Router {
        axum::Router::new()
    }
}
