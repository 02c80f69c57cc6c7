//! CPU priority of the segment encoders.
//!
//! Encoding a closed segment for upload (reading it, checking every batch, compressing its
//! chunks) costs about a third of the CPU the produce of those bytes did, and it is background
//! work: on a machine with no spare core it should only use what produce and fetch leave. A nice
//! value does not achieve that: with the encoder at nice 10 or 19 a producer on a two-core
//! machine lost the same ~15% (the scheduler still gives a niced thread its slice whenever the
//! foreground threads wake up), while with Linux's `SCHED_IDLE` policy, which runs a thread only
//! on CPU time no other thread wants, it lost nothing measurable (BENCHMARKS.md, session 15).
//!
//! An idle-priority encoder can starve while the machine stays busy, so the priority follows the
//! upload backlog (bytes of closed segments waiting for upload, all partitions): at or below
//! `idle_max_backlog_bytes` the encoders run idle, above it at nice 10 and catch up before
//! `remote.log.manager.max.upload.lag.bytes` refuses producers. The encoder re-reads the backlog
//! after every chunk, so a long segment does not stay idle while the backlog grows; it reads it
//! from an atomic its upload task refreshes, because an idle thread preempted while holding a
//! lock that the produce path also takes (the upload queues') would stall that path. Idle priority
//! is used only if this process may leave it again (root or `CAP_SYS_NICE`; checked once):
//! otherwise an encoder stuck at idle could never catch up, and every encoder runs at nice 10.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use thread_priority::unix::{
    NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
    thread_native_id, thread_schedule_policy,
};
use thread_priority::{ThreadPriority, ThreadPriorityValue};

const IDLE: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);

/// Nice value of an encoder catching up: below produce and fetch (nice 0), yet a steady share of
/// a busy CPU.
pub const CATCH_UP_NICE: i32 = 10;

/// CPU priority of a segment encoder thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderPriority {
    /// `SCHED_IDLE`: runs only on CPU time no other thread wants.
    Idle,
    /// `SCHED_OTHER` at [`CATCH_UP_NICE`].
    CatchUp,
}

impl EncoderPriority {
    /// The priority for an upload backlog of `backlog_bytes` when encoders may run idle up to
    /// `idle_max_backlog_bytes` (`None`: never idle).
    pub fn for_backlog(backlog_bytes: u64, idle_max_backlog_bytes: Option<u64>) -> Self {
        match idle_max_backlog_bytes {
            Some(max) if backlog_bytes <= max && idle_priority_reversible() => Self::Idle,
            _ => Self::CatchUp,
        }
    }

    /// Moves the calling thread to this priority.
    pub fn apply_to_current_thread(self) -> Result<(), String> {
        let tid = rustix::thread::gettid();
        match self {
            Self::Idle => {
                // Nice first (raising it needs no privilege), so that leaving SCHED_IDLE for
                // SCHED_OTHER later asks only for nice 10, not for the nice 0 the thread had.
                rustix::process::setpriority_process(Some(tid), CATCH_UP_NICE)
                    .map_err(|e| format!("nice {CATCH_UP_NICE}: {e}"))?;
                let switched =
                    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, IDLE);
                // The crate then also asks for nice 0, which an unprivileged process may not
                // have; the nice value does not matter under SCHED_IDLE, the policy does.
                match (thread_schedule_policy(), switched) {
                    (Ok(IDLE), _) => Ok(()),
                    (_, Err(e)) => Err(format!("SCHED_IDLE: {e:?}")),
                    (policy, Ok(())) => Err(format!("SCHED_IDLE not in force: {policy:?}")),
                }
            }
            Self::CatchUp => {
                set_thread_priority_and_policy(
                    thread_native_id(),
                    catch_up_priority(),
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
                )
                .map_err(|e| format!("SCHED_OTHER: {e:?}"))?;
                // The crate maps its priority scale onto nice values; pin the exact one.
                rustix::process::setpriority_process(Some(tid), CATCH_UP_NICE)
                    .map_err(|e| format!("nice {CATCH_UP_NICE}: {e}"))
            }
        }
    }
}

/// Segment bytes the encoders read at each priority, for `/metrics`: bytes at catch-up priority
/// mean uploads were far enough behind to compete with produce and fetch.
#[derive(Debug, Default)]
pub struct EncoderStats {
    pub idle_bytes: AtomicU64,
    pub catch_up_bytes: AtomicU64,
}

impl EncoderStats {
    pub(crate) fn record(&self, priority: EncoderPriority, bytes: u64) {
        let counter = match priority {
            EncoderPriority::Idle => &self.idle_bytes,
            EncoderPriority::CatchUp => &self.catch_up_bytes,
        };
        counter.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The `thread_priority` value that the crate turns into nice [`CATCH_UP_NICE`] for
/// `SCHED_OTHER` (its 0-99 scale maps onto nice 19..-20).
fn catch_up_priority() -> ThreadPriority {
    let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    (0u8..=99)
        .filter_map(|p| ThreadPriorityValue::try_from(p).ok())
        .map(ThreadPriority::Crossplatform)
        .find(|p| p.to_posix(other).ok() == Some(CATCH_UP_NICE))
        .unwrap_or(ThreadPriority::Min)
}

/// Whether a thread of this process can enter `SCHED_IDLE` and leave it again (tried once, on a
/// thread of its own).
pub fn idle_priority_reversible() -> bool {
    static REVERSIBLE: OnceLock<bool> = OnceLock::new();
    *REVERSIBLE.get_or_init(|| {
        let probe = std::thread::Builder::new()
            .name("strata-priority-probe".into())
            .spawn(|| {
                EncoderPriority::Idle.apply_to_current_thread()?;
                EncoderPriority::CatchUp.apply_to_current_thread()
            });
        let outcome = match probe.map(|t| t.join()) {
            Ok(Ok(outcome)) => outcome,
            _ => Err("the probe thread did not run".to_string()),
        };
        if let Err(error) = &outcome {
            tracing::info!(%error, "segment encoders run at nice {CATCH_UP_NICE}: this process \
                could not leave idle CPU priority once in it (needs root or CAP_SYS_NICE)");
        }
        outcome.is_ok()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The calling thread's scheduling policy and nice value.
    pub(crate) fn current_priority() -> (ThreadSchedulePolicy, i32) {
        let policy = thread_schedule_policy().expect("read the scheduling policy");
        let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()))
            .expect("read the nice value");
        (policy, nice)
    }

    const IDLE: ThreadSchedulePolicy =
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    const OTHER: ThreadSchedulePolicy =
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);

    #[test]
    fn backlog_over_the_limit_or_no_limit_means_catch_up() {
        assert_eq!(
            EncoderPriority::for_backlog(5, None),
            EncoderPriority::CatchUp
        );
        assert_eq!(
            EncoderPriority::for_backlog(11, Some(10)),
            EncoderPriority::CatchUp
        );
        let under = if idle_priority_reversible() {
            EncoderPriority::Idle
        } else {
            EncoderPriority::CatchUp
        };
        assert_eq!(EncoderPriority::for_backlog(10, Some(10)), under);
        assert_eq!(EncoderPriority::for_backlog(0, Some(0)), under);
    }

    #[test]
    fn a_thread_goes_idle_and_back_to_nice_10() {
        std::thread::spawn(|| {
            if !idle_priority_reversible() {
                // Unprivileged: the encoders never go idle; catch-up (raising nice) always works.
                EncoderPriority::CatchUp.apply_to_current_thread().unwrap();
                assert_eq!(current_priority(), (OTHER, CATCH_UP_NICE));
                return;
            }
            EncoderPriority::Idle.apply_to_current_thread().unwrap();
            assert_eq!(current_priority().0, IDLE);
            EncoderPriority::CatchUp.apply_to_current_thread().unwrap();
            assert_eq!(current_priority(), (OTHER, CATCH_UP_NICE));
            EncoderPriority::Idle.apply_to_current_thread().unwrap();
            assert_eq!(current_priority().0, IDLE);
        })
        .join()
        .unwrap();
    }
}
