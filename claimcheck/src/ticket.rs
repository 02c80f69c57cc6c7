//! The claim ticket: the versioned public contract between producers, the gateway and consumers.
//!
//! A ticket record carries the same fields twice, so consumers can use whichever they can read:
//!
//! * record headers `claimcheck.version` (`1`), `claimcheck.id`, `claimcheck.uri`,
//!   `claimcheck.size`, `claimcheck.sha256`, `claimcheck.content-type` (UTF-8 text values);
//! * a JSON value `{version, id, topic, uri, size, sha256, content_type, created_at}`.
//!
//! The contract is documented in `docs/claim-ticket.md` with a JSON Schema
//! (`docs/claim-ticket.schema.json`). Version rules: fields may be added within version 1;
//! removing or changing the meaning of a field bumps the version, and readers reject versions
//! they do not know ([`ClaimTicket::from_record`]).

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{ClaimError, Result};

/// The ticket format version this crate writes and reads.
pub const TICKET_VERSION: u32 = 1;

/// Record header names of the ticket contract.
pub mod header {
    pub const VERSION: &str = "claimcheck.version";
    pub const ID: &str = "claimcheck.id";
    pub const URI: &str = "claimcheck.uri";
    pub const SIZE: &str = "claimcheck.size";
    pub const SHA256: &str = "claimcheck.sha256";
    pub const CONTENT_TYPE: &str = "claimcheck.content-type";
}

macro_rules! random_hex_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// A fresh id: 128 bits from the operating system's CSPRNG, unguessable.
            pub fn random() -> Self {
                Self(rand::random())
            }
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, "({})"), self)
            }
        }
        impl FromStr for $name {
            type Err = ClaimError;
            /// Accepts exactly 32 lowercase hex digits, nothing else (no path characters).
            fn from_str(s: &str) -> Result<Self> {
                let invalid = || ClaimError::InvalidId { kind: $kind, value: s.chars().take(80).collect() };
                if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(invalid());
                }
                let mut out = [0u8; 16];
                hex::decode_to_slice(s, &mut out).map_err(|_| invalid())?;
                Ok(Self(out))
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

random_hex_id!(
    /// Identifies one claimed payload (reference, chunked or CSV mode).
    ClaimId,
    "claim"
);
random_hex_id!(
    /// Identifies one resumable upload session.
    UploadId,
    "upload"
);

/// Where a record landed in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPosition {
    pub partition: i32,
    pub offset: i64,
}

/// The claim ticket (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimTicket {
    pub version: u32,
    pub id: ClaimId,
    pub topic: String,
    /// Where to download the payload: `<public url>/v1/claims/<id>` (relative when the gateway
    /// has no public URL configured).
    pub uri: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the payload.
    pub sha256: String,
    pub content_type: String,
    /// RFC 3339 UTC timestamp of when the payload was stored.
    pub created_at: String,
}

/// The answer to a successful upload: the ticket and where its record landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimReceipt {
    #[serde(flatten)]
    pub ticket: ClaimTicket,
    pub partition: i32,
    pub offset: i64,
}

impl ClaimTicket {
    /// The record headers of this ticket, in contract order.
    pub fn to_headers(&self) -> Vec<(String, Bytes)> {
        let h = |k: &str, v: String| (k.to_string(), Bytes::from(v));
        vec![
            h(header::VERSION, self.version.to_string()),
            h(header::ID, self.id.to_string()),
            h(header::URI, self.uri.clone()),
            h(header::SIZE, self.size.to_string()),
            h(header::SHA256, self.sha256.clone()),
            h(header::CONTENT_TYPE, self.content_type.clone()),
        ]
    }

    /// The JSON record value of this ticket.
    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("ticket serializes"))
    }

    /// Reads a ticket from a consumed record: from the `claimcheck.*` headers when present
    /// (topic and `created_at` then come from the JSON value if it parses, else stay empty),
    /// otherwise from the JSON value alone. Unknown versions are rejected.
    pub fn from_record<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        value: &[u8],
    ) -> Result<ClaimTicket> {
        let headers: Vec<(&str, &[u8])> = headers
            .into_iter()
            .filter(|(k, _)| k.starts_with("claimcheck."))
            .collect();
        let from_json = serde_json::from_slice::<ClaimTicket>(value);
        let ticket = if headers.iter().any(|(k, _)| *k == header::VERSION) {
            let get = |name: &str| -> Result<String> {
                let raw = headers
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| ClaimError::InvalidTicket(format!("missing header {name}")))?;
                String::from_utf8(raw.to_vec())
                    .map_err(|_| ClaimError::InvalidTicket(format!("header {name} is not UTF-8")))
            };
            let number = |name: &str| -> Result<u64> {
                get(name)?.trim().parse().map_err(|_| {
                    ClaimError::InvalidTicket(format!("header {name} is not a number"))
                })
            };
            let (topic, created_at) = match &from_json {
                Ok(t) => (t.topic.clone(), t.created_at.clone()),
                Err(_) => (String::new(), String::new()),
            };
            ClaimTicket {
                version: u32::try_from(number(header::VERSION)?)
                    .map_err(|_| ClaimError::InvalidTicket("version out of range".into()))?,
                id: get(header::ID)?
                    .parse()
                    .map_err(|e: ClaimError| ClaimError::InvalidTicket(e.to_string()))?,
                topic,
                uri: get(header::URI)?,
                size: number(header::SIZE)?,
                sha256: get(header::SHA256)?,
                content_type: get(header::CONTENT_TYPE)?,
                created_at,
            }
        } else {
            from_json.map_err(|e| ClaimError::InvalidTicket(format!("not a ticket: {e}")))?
        };
        ticket.validate()?;
        Ok(ticket)
    }

    /// Checks version and field formats.
    pub fn validate(&self) -> Result<()> {
        if self.version != TICKET_VERSION {
            return Err(ClaimError::InvalidTicket(format!(
                "unsupported ticket version {} (this reader knows {TICKET_VERSION})",
                self.version
            )));
        }
        if parse_sha256_hex(&self.sha256).is_none() {
            return Err(ClaimError::InvalidTicket(
                "sha256 is not 64 lowercase hex digits".into(),
            ));
        }
        Ok(())
    }
}

/// Parses 64 lowercase-or-uppercase hex digits into a digest.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

/// Now as an RFC 3339 UTC timestamp with millisecond precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Validates a topic name with Kafka's rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.`
/// or `..`. This also rules out every path-traversal trick.
pub fn validate_topic(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(ClaimError::InvalidTopic {
            name: name.chars().take(300).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > 249 {
        return invalid("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClaimTicket {
        ClaimTicket {
            version: 1,
            id: ClaimId::random(),
            topic: "videos".into(),
            uri: "http://gw/v1/claims/x".into(),
            size: 42,
            sha256: "ab".repeat(32),
            content_type: "video/mp4".into(),
            created_at: now_rfc3339(),
        }
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = ClaimId::random();
        assert_eq!(id.to_string().parse::<ClaimId>().unwrap(), id);
        for bad in [
            "",
            "../etc/passwd",
            &"A".repeat(32),
            &"0".repeat(31),
            &"g".repeat(32),
        ] {
            assert!(bad.parse::<ClaimId>().is_err(), "{bad}");
        }
        assert_ne!(ClaimId::random(), ClaimId::random());
    }

    #[test]
    fn ticket_from_headers_and_from_json_agree() {
        let t = sample();
        let headers = t.to_headers();
        let json = t.to_json();
        let via_headers =
            ClaimTicket::from_record(headers.iter().map(|(k, v)| (k.as_str(), &v[..])), &json)
                .unwrap();
        let via_json = ClaimTicket::from_record(std::iter::empty(), &json).unwrap();
        assert_eq!(via_headers, t);
        assert_eq!(via_json, t);
        // Headers alone (value not JSON) still resolve; topic is then unknown.
        let only_headers =
            ClaimTicket::from_record(headers.iter().map(|(k, v)| (k.as_str(), &v[..])), b"x")
                .unwrap();
        assert_eq!(only_headers.id, t.id);
        assert_eq!(only_headers.topic, "");
    }

    #[test]
    fn json_value_matches_the_published_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/claim-ticket.schema.json")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        required.sort();
        fields.sort();
        assert_eq!(required, fields);
        assert_eq!(schema["properties"]["version"]["const"], TICKET_VERSION);
        // Every header name is documented in the contract page.
        let page = include_str!("../../docs/claim-ticket.md");
        for (name, _) in sample().to_headers() {
            assert!(page.contains(&name), "{name} undocumented");
        }
    }

    #[test]
    fn unknown_version_rejected() {
        let mut t = sample();
        t.version = 2;
        assert!(ClaimTicket::from_record(std::iter::empty(), &t.to_json()).is_err());
    }

    #[test]
    fn kafka_topic_rules() {
        for ok in ["a", "orders.v1", "A_b-9", &"x".repeat(249)] {
            validate_topic(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ä", &"x".repeat(250)] {
            assert!(validate_topic(bad).is_err(), "{bad}");
        }
    }
}
