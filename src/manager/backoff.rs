//! Reconnection delays: exponential, capped, with jitter so that many clients restarted together
//! do not come back in lock step.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// An exponential backoff: each delay doubles up to a cap; each is drawn from the upper half of
/// its step ("equal jitter"), so it is never shorter than half the step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
    rng: u64,
}

impl Backoff {
    /// Delays starting at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        // A per-process random key from the standard library: no extra dependency needed.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Backoff {
            initial,
            max: max.max(initial),
            step: initial,
            rng: seed | 1,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        let spread = half.as_nanos().min(u128::from(u64::MAX)) as u64;
        let extra = if spread == 0 {
            0
        } else {
            self.random() % (spread + 1)
        };
        half + Duration::from_nanos(extra)
    }

    /// Starts again from the initial delay (after a success).
    pub fn reset(&mut self) {
        self.step = self.initial;
    }

    /// xorshift64: plenty for jitter.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let steps = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (d, s) in d.iter().zip(steps) {
            assert!(*d >= ms(s) / 2 && *d <= ms(s), "{d:?} for step {s}");
        }
        b.reset();
        assert!(b.next_delay() <= ms(100));
    }
}
