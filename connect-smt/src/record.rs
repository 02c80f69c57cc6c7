//! [`ConnectRecord`]: the record a transform sees, Kafka Connect's `ConnectRecord` without
//! schemas (keys and values are raw bytes, as on the wire).

use bytes::Bytes;

/// One Kafka record as it flows through a transform chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRecord {
    pub topic: String,
    /// `None` when the partition is not chosen yet (produce path before partitioning).
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    /// In record order; names may repeat, values may be null, as in Kafka.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch (create or log-append time).
    pub timestamp: i64,
}

impl ConnectRecord {
    /// A record with no key, no headers and timestamp 0.
    pub fn new(topic: impl Into<String>, value: Option<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value,
            headers: Vec::new(),
            timestamp: 0,
        }
    }

    /// Whether the value is null (a delete marker for compacted topics).
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Whether at least one header is called `name`.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n == name)
    }

    /// The value of the last header called `name` (Kafka's `lastHeader`); `Some(None)` when
    /// that header is null.
    pub fn last_header(&self, name: &str) -> Option<Option<&Bytes>> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Appends a header (existing headers of the same name stay, as in Kafka).
    pub fn add_header(&mut self, name: impl Into<String>, value: Option<Bytes>) {
        self.headers.push((name.into(), value));
    }

    /// Removes every header whose name satisfies `matches`.
    pub fn remove_headers_where(&mut self, mut matches: impl FnMut(&str) -> bool) {
        self.headers.retain(|(n, _)| !matches(n));
    }
}
