//! Splitting a buffer of concatenated batches (a produce request, a segment file) into batches.

use bytes::Bytes;

use crate::FormatError;
use crate::batch::{RecordBatch, declared_size};

/// How a [`BatchIter`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchIterEnd {
    /// The buffer ended exactly on a batch boundary.
    Clean,
    /// The buffer ends inside a batch (a torn write or a truncated file): `position` is where the
    /// incomplete batch starts, so truncating there leaves only whole batches.
    TornTail { position: usize, error: FormatError },
}

/// Iterates over the whole batches in a buffer without copying. It checks lengths only; callers
/// call [`RecordBatch::validate`] on each batch they accept.
///
/// After `next()` returns `None`, [`BatchIter::end`] tells whether the tail was torn.
pub struct BatchIter {
    buffer: Bytes,
    position: usize,
    end: Option<BatchIterEnd>,
}

impl BatchIter {
    pub fn new(buffer: Bytes) -> Self {
        Self {
            buffer,
            position: 0,
            end: None,
        }
    }

    /// Byte position of the next batch to be returned.
    pub fn position(&self) -> usize {
        self.position
    }

    /// How iteration ended; `None` while batches remain.
    pub fn end(&self) -> Option<&BatchIterEnd> {
        self.end.as_ref()
    }
}

impl Iterator for BatchIter {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        if self.end.is_some() {
            return None;
        }
        let rest = &self.buffer[self.position..];
        if rest.is_empty() {
            self.end = Some(BatchIterEnd::Clean);
            return None;
        }
        let size = match declared_size(rest) {
            None => Err(FormatError::Truncated {
                needed: 12,
                available: rest.len(),
            }),
            Some(Err(error)) => Err(error),
            Some(Ok(size)) if size > rest.len() => Err(FormatError::Truncated {
                needed: size,
                available: rest.len(),
            }),
            Some(Ok(size)) => Ok(size),
        };
        match size {
            Ok(size) => {
                let batch = self.buffer.slice(self.position..self.position + size);
                self.position += size;
                // `declared_size` guarantees size >= header, so this cannot fail.
                RecordBatch::new(batch).ok()
            }
            Err(error) => {
                self.end = Some(BatchIterEnd::TornTail {
                    position: self.position,
                    error,
                });
                None
            }
        }
    }
}
