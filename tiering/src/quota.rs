//! Byte-rate quotas of the remote tier (KIP-956): `remote.log.manager.copy.max.bytes.per.second`
//! for uploads and `remote.log.manager.fetch.max.bytes.per.second` for cold reads, each a token
//! bucket shared by every transfer of its kind. Waiters queue on one async mutex, so a quota is
//! shared fairly in arrival order. The rate can change while transfers wait (dynamic broker
//! configs): a waiter re-plans at once instead of finishing a wait computed at the old rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// `0` in [`RateLimiter::rate`]: no limit.
const UNLIMITED: u64 = 0;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Bytes per second, or [`UNLIMITED`].
    rate: AtomicU64,
    rate_changed: Notify,
    /// Tokens (bytes; negative while a transfer pays off its debt) and when they were counted.
    bucket: tokio::sync::Mutex<(f64, Instant)>,
    /// Total time transfers spent waiting for the quota, for metrics.
    throttled_nanos: AtomicU64,
}

impl RateLimiter {
    pub(crate) fn new(bytes_per_second: Option<u64>) -> Self {
        let rate = bytes_per_second.unwrap_or(UNLIMITED);
        Self {
            rate: AtomicU64::new(rate),
            rate_changed: Notify::new(),
            // Start with one second's burst, as a bucket that has been idle would have.
            bucket: tokio::sync::Mutex::new((rate as f64, Instant::now())),
            throttled_nanos: AtomicU64::new(0),
        }
    }

    /// Changes the rate (`None` or `Some(0)`: unlimited); waiting transfers re-plan at once.
    pub(crate) fn set_rate(&self, bytes_per_second: Option<u64>) {
        let rate = bytes_per_second.unwrap_or(UNLIMITED);
        if self.rate.swap(rate, Ordering::AcqRel) != rate {
            self.rate_changed.notify_waiters();
        }
    }

    pub(crate) fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Acquire)).filter(|r| *r != UNLIMITED)
    }

    /// Time transfers have spent waiting for this quota so far.
    pub(crate) fn throttled(&self) -> Duration {
        Duration::from_nanos(self.throttled_nanos.load(Ordering::Relaxed))
    }

    /// Waits until `bytes` may be transferred. Bursts up to one second of quota; a transfer
    /// larger than that goes into debt, which the next ones wait out.
    pub(crate) async fn acquire(&self, bytes: u64) {
        if self.rate().is_none() {
            return;
        }
        let mut bucket = self.bucket.lock().await;
        let started = Instant::now();
        self.refill(&mut bucket);
        bucket.0 -= bytes as f64;
        // Holding the lock while paying the debt makes later callers wait their turn.
        loop {
            // Registered before the rate is read, so that a change in between still wakes us.
            let rate_changed = self.rate_changed.notified();
            let Some(rate) = self.rate() else {
                bucket.0 = 0.0;
                break;
            };
            if bucket.0 >= 0.0 {
                break;
            }
            let debt = Duration::from_secs_f64(-bucket.0 / rate as f64);
            tokio::select! {
                () = tokio::time::sleep(debt) => {}
                () = rate_changed => {}
            }
            self.refill(&mut bucket);
        }
        let waited = started.elapsed().as_nanos() as u64;
        self.throttled_nanos.fetch_add(waited, Ordering::Relaxed);
    }

    /// Adds the tokens earned since the last count, up to one second's worth.
    fn refill(&self, bucket: &mut (f64, Instant)) {
        let now = Instant::now();
        if let Some(rate) = self.rate() {
            let rate = rate as f64;
            bucket.0 = (bucket.0 + now.duration_since(bucket.1).as_secs_f64() * rate).min(rate);
        }
        bucket.1 = now;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn limits_rate() {
        let quota = RateLimiter::new(Some(100_000));
        let start = Instant::now();
        for _ in 0..4 {
            quota.acquire(50_000).await;
        }
        // 200 kB at 100 kB/s with a 100 kB burst: at least ~1 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(quota.throttled() >= Duration::from_millis(900));
        let free = RateLimiter::new(None);
        free.acquire(u64::MAX).await;
        assert_eq!(free.throttled(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_rate_change_reaches_a_waiting_transfer() {
        // 10 MB at 1 MB/s would wait ~9 s; lifting the limit after 200 ms ends the wait.
        let quota = Arc::new(RateLimiter::new(Some(1_000_000)));
        let waiter = {
            let quota = quota.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                quota.acquire(10_000_000).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        quota.set_rate(None);
        let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter saw the new rate")
            .unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");

        // Raising (not lifting) the rate shortens the wait too: 3 MB of debt at 1 MB/s is 3 s,
        // at 100 MB/s it is gone at once.
        quota.set_rate(Some(1_000_000));
        quota.acquire(1_000_000).await; // spends the burst
        let waiter = {
            let quota = quota.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                quota.acquire(3_000_000).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        quota.set_rate(Some(100_000_000));
        let waited = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("the waiter saw the new rate")
            .unwrap();
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert_eq!(quota.rate(), Some(100_000_000));
    }
}
