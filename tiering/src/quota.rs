//! Copy byte-rate quota (`remote.log.manager.copy.max.bytes.per.second`): a token bucket shared
//! by every upload. Waiters queue on one async mutex, so the quota is shared fairly in order.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: Option<u64>,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(crate) fn new(bytes_per_second: Option<u64>) -> Self {
        let rate = bytes_per_second.filter(|r| *r > 0);
        Self {
            rate,
            state: tokio::sync::Mutex::new((rate.unwrap_or(0) as f64, Instant::now())),
        }
    }

    /// Wait until `bytes` may be sent. Bursts up to one second of quota.
    pub(crate) async fn acquire(&self, bytes: u64) {
        let Some(rate) = self.rate else { return };
        let rate = rate as f64;
        let mut st = self.state.lock().await;
        let now = Instant::now();
        st.0 = (st.0 + now.duration_since(st.1).as_secs_f64() * rate).min(rate);
        st.1 = now;
        st.0 -= bytes as f64;
        if st.0 < 0.0 {
            // Hold the lock while paying the debt so later callers wait their turn.
            tokio::time::sleep(Duration::from_secs_f64(-st.0 / rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_rate() {
        let q = RateLimiter::new(Some(100_000));
        let start = Instant::now();
        for _ in 0..4 {
            q.acquire(50_000).await;
        }
        // 200 kB at 100 kB/s with a 100 kB burst: at least ~1 s.
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
        let free = RateLimiter::new(None);
        free.acquire(u64::MAX).await;
    }
}
