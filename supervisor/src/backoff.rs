//! Restart policy as plain data: exponential backoff after fast failures, a crash-loop state
//! after too many of them in a row, and a reset after a run that lasted.

use std::time::Duration;

use crate::config::RestartConfig;

/// What to do after a gateway exited (or failed to start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long before the next start.
    pub delay: Duration,
    /// The tenant is crash-looping (shown in status; restarts continue at the longest delay).
    pub crash_loop: bool,
}

/// Backoff state of one tenant.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    fast: Duration,
    crash_after: u32,
    consecutive_fast: u32,
}

impl Backoff {
    pub fn new(cfg: &RestartConfig) -> Backoff {
        Backoff {
            initial: Duration::from_millis(cfg.initial_backoff_ms),
            max: Duration::from_millis(cfg.max_backoff_ms),
            fast: Duration::from_millis(cfg.fast_failure_ms),
            crash_after: cfg.crash_loop_after,
            consecutive_fast: 0,
        }
    }

    /// Record an exit after `ran_for` (zero when the start itself failed).
    pub fn on_exit(&mut self, ran_for: Duration) -> Decision {
        if ran_for >= self.fast {
            self.consecutive_fast = 0;
            return Decision {
                delay: self.initial,
                crash_loop: false,
            };
        }
        self.consecutive_fast = self.consecutive_fast.saturating_add(1);
        let crash_loop = self.consecutive_fast >= self.crash_after;
        let shift = (self.consecutive_fast - 1).min(31);
        let delay = if crash_loop {
            self.max
        } else {
            self.initial.saturating_mul(1u32 << shift).min(self.max)
        };
        Decision { delay, crash_loop }
    }

    /// Forget past failures (manual start or restart).
    pub fn reset(&mut self) {
        self.consecutive_fast = 0;
    }

    pub fn consecutive_fast_failures(&self) -> u32 {
        self.consecutive_fast
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(crash_after: u32) -> RestartConfig {
        RestartConfig {
            crash_loop_after: crash_after,
            ..RestartConfig::default()
        }
    }

    #[test]
    fn doubles_up_to_the_cap_then_crash_loops() {
        let mut b = Backoff::new(&cfg(9));
        let secs: Vec<u64> = (0..9)
            .map(|_| b.on_exit(Duration::from_millis(100)).delay.as_secs())
            .collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let mut b = Backoff::new(&cfg(3));
        assert!(!b.on_exit(Duration::ZERO).crash_loop);
        assert!(!b.on_exit(Duration::ZERO).crash_loop);
        let d = b.on_exit(Duration::ZERO);
        assert!(d.crash_loop);
        assert_eq!(d.delay, Duration::from_secs(60));
    }

    #[test]
    fn a_long_run_or_reset_starts_over() {
        let mut b = Backoff::new(&cfg(5));
        b.on_exit(Duration::ZERO);
        b.on_exit(Duration::ZERO);
        assert_eq!(b.consecutive_fast_failures(), 2);
        let d = b.on_exit(Duration::from_secs(11));
        assert_eq!(
            d,
            Decision {
                delay: Duration::from_secs(1),
                crash_loop: false
            }
        );
        assert_eq!(b.on_exit(Duration::ZERO).delay, Duration::from_secs(1));
        b.on_exit(Duration::ZERO);
        b.reset();
        assert_eq!(b.on_exit(Duration::ZERO).delay, Duration::from_secs(1));
    }

    #[test]
    fn no_overflow_after_many_failures() {
        let mut b = Backoff::new(&cfg(1000));
        for _ in 0..100 {
            assert!(b.on_exit(Duration::ZERO).delay <= Duration::from_secs(60));
        }
    }
}
