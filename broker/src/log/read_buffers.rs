//! Reused read buffers for log reads.
//!
//! A fetch reads up to `max_bytes` (1 MiB by default in Kafka clients, often 8-64 MiB for
//! replays) into a buffer that lives until the response reaches the socket. Allocating a fresh
//! buffer for every read costs a page fault per 4 KiB on first touch (large allocations come
//! straight from the kernel), which made reads run at about half of a plain `read(2)` into one
//! reused buffer. Instead a finished buffer goes back to a small pool, grouped by power-of-two
//! capacity, and the next read of that size class reuses its already-mapped pages.
//!
//! The pool is bounded: at most [`RETAINED_BYTES`] are kept idle in all, and buffers above
//! [`LARGEST_POOLED`] are never kept, so the pool cannot grow the broker's memory beyond a few
//! tens of MiB whatever the fetch pattern.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use bytes::Bytes;

/// Smallest size class: reads below this share the 64 KiB class.
const SMALLEST_CLASS_SHIFT: u32 = 16;
/// Largest pooled buffer: bigger reads allocate and free as before.
pub(crate) const LARGEST_POOLED: usize = 16 << 20;
const CLASSES: usize = (LARGEST_POOLED.trailing_zeros() - SMALLEST_CLASS_SHIFT + 1) as usize;
/// Idle bytes kept across all classes.
pub(crate) const RETAINED_BYTES: usize = 32 << 20;

/// The process-wide pool used by segment reads.
pub(crate) static READ_BUFFERS: ReadBufferPool = ReadBufferPool::new();

pub(crate) struct ReadBufferPool {
    idle: Mutex<IdleBuffers>,
}

/// Idle buffers are fully initialised (`len == capacity`): they were zeroed once when first
/// allocated and are overwritten by every read, so reuse costs no fill pass.
struct IdleBuffers {
    by_class: [Vec<Vec<u8>>; CLASSES],
    bytes: usize,
}

impl ReadBufferPool {
    pub(crate) const fn new() -> Self {
        Self {
            idle: Mutex::new(IdleBuffers {
                by_class: [const { Vec::new() }; CLASSES],
                bytes: 0,
            }),
        }
    }

    /// Reads exactly `len` bytes (at most [`LARGEST_POOLED`]) at `position` into a pooled
    /// buffer. The buffer goes back to the pool when the last `Bytes` sharing it is dropped.
    pub(crate) fn read_at(
        &'static self,
        file: &File,
        position: u64,
        len: usize,
    ) -> io::Result<Bytes> {
        let mut buffer = self.take(len);
        file.read_exact_at(&mut buffer.bytes[..len], position)?;
        buffer.filled = len;
        Ok(Bytes::from_owner(buffer))
    }

    fn take(&'static self, len: usize) -> PooledBuffer {
        let class = class_of(len).expect("read_at is only called up to LARGEST_POOLED");
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let buffer = idle.by_class[class].pop();
            if let Some(buffer) = &buffer {
                idle.bytes -= buffer.len();
            }
            buffer
        };
        PooledBuffer {
            bytes: reused.unwrap_or_else(|| vec![0; class_capacity(class)]),
            filled: 0,
            pool: self,
        }
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let Some(class) = class_of(buffer.len()) else {
            return;
        };
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.bytes + buffer.len() <= RETAINED_BYTES {
            idle.bytes += buffer.len();
            idle.by_class[class].push(buffer);
        }
    }

    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        self.idle.lock().unwrap().bytes
    }
}

fn class_of(len: usize) -> Option<usize> {
    if len > LARGEST_POOLED {
        return None;
    }
    let shift = len.max(1).next_power_of_two().trailing_zeros();
    Some(shift.saturating_sub(SMALLEST_CLASS_SHIFT) as usize)
}

fn class_capacity(class: usize) -> usize {
    1 << (class as u32 + SMALLEST_CLASS_SHIFT)
}

/// A read buffer that returns to its pool when the last [`Bytes`] made from it is dropped.
struct PooledBuffer {
    bytes: Vec<u8>,
    filled: usize,
    pool: &'static ReadBufferPool,
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.filled]
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn size_classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(0), Some(0));
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(64 << 10), Some(0));
        assert_eq!(class_of((64 << 10) + 1), Some(1));
        assert_eq!(class_of(1 << 20), Some(4));
        assert_eq!(class_capacity(4), 1 << 20);
        assert_eq!(class_of(LARGEST_POOLED), Some(CLASSES - 1));
        assert_eq!(class_of(LARGEST_POOLED + 1), None);
    }

    #[test]
    fn reads_return_exactly_the_bytes_asked_for_and_reuse_the_buffer() {
        static POOL: ReadBufferPool = ReadBufferPool::new();
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (_dir, file) = file_with(&content);

        let first = POOL.read_at(&file, 1000, 200_000).unwrap();
        assert_eq!(&first[..], &content[1000..201_000]);
        let address = first.as_ptr();
        let tail = first.slice(199_990..);
        drop(first);
        assert_eq!(POOL.idle_bytes(), 0, "still referenced by a slice");
        assert_eq!(&tail[..], &content[200_990..201_000]);
        drop(tail);
        assert_eq!(POOL.idle_bytes(), 256 << 10);

        // A shorter read of the same class gets the same allocation and sees none of the old
        // bytes past its own length.
        let second = POOL.read_at(&file, 5, 150_000).unwrap();
        assert_eq!(second.as_ptr(), address, "same allocation");
        assert_eq!(second.len(), 150_000);
        assert_eq!(&second[..], &content[5..150_005]);
        assert_eq!(POOL.idle_bytes(), 0);
    }

    #[test]
    fn a_read_past_the_end_fails_and_keeps_the_pool_usable() {
        static POOL: ReadBufferPool = ReadBufferPool::new();
        let (_dir, file) = file_with(b"short");
        let error = POOL.read_at(&file, 0, 10).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(&POOL.read_at(&file, 1, 3).unwrap()[..], b"hor");
    }

    #[test]
    fn the_pool_keeps_at_most_its_budget() {
        static POOL: ReadBufferPool = ReadBufferPool::new();
        let (_dir, file) = file_with(&[9u8; 16]);
        let held: Vec<_> = (0..(RETAINED_BYTES / LARGEST_POOLED) + 2)
            .map(|_| {
                let mut buffer = POOL.take(LARGEST_POOLED);
                file.read_exact_at(&mut buffer.bytes[..16], 0).unwrap();
                buffer
            })
            .collect();
        drop(held);
        assert_eq!(POOL.idle_bytes(), RETAINED_BYTES);
    }
}
