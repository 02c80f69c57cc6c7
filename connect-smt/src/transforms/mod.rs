//! The built-in transforms, one per file.

mod claim_check;
mod claim_check_resolve;
mod drop_headers;
mod filter;
mod insert_header;

pub use claim_check::{ClaimCheck, TicketField};
pub use claim_check_resolve::ClaimCheckResolve;
pub use drop_headers::DropHeaders;
pub use filter::Filter;
pub use insert_header::InsertHeader;
