//! Time as an injected dependency: the system clock in production, a manual clock in tests.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in Unix nanoseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_nanos(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(start_nanos: i64) -> Self {
        Self {
            now: AtomicI64::new(start_nanos),
        }
    }

    pub fn set(&self, nanos: i64) {
        self.now.store(nanos, Ordering::SeqCst);
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.now.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}
