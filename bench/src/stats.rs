//! Latency samples and their summary: throughput, p50 and p99.

use std::time::Duration;

/// What one measured run produced: every operation's latency and the wall time of the run.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// One entry per completed operation.
    pub lat: Vec<Duration>,
    /// Wall time from the first operation's start to the last one's end.
    pub wall: Duration,
}

impl Samples {
    /// Merges the latencies of concurrent workers; `wall` is the run's overall wall time.
    pub fn merged(parts: Vec<Vec<Duration>>, wall: Duration) -> Samples {
        let lat = parts.into_iter().flatten().collect();
        Samples { lat, wall }
    }

    /// Summarises: sorts the latencies and picks the percentiles.
    pub fn summary(mut self) -> Summary {
        self.lat.sort_unstable();
        let pick = |q: f64| -> Duration {
            if self.lat.is_empty() {
                return Duration::ZERO;
            }
            // Nearest-rank percentile: the smallest sample with at least q of them at or below it.
            let rank = ((q * self.lat.len() as f64).ceil() as usize).clamp(1, self.lat.len());
            self.lat.get(rank - 1).copied().unwrap_or_default()
        };
        let secs = self.wall.as_secs_f64();
        Summary {
            ops: self.lat.len(),
            per_sec: if secs > 0.0 {
                self.lat.len() as f64 / secs
            } else {
                0.0
            },
            p50: pick(0.50),
            p99: pick(0.99),
        }
    }
}

/// A run's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Operations completed.
    pub ops: usize,
    /// Operations per second of wall time.
    pub per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// Formats a duration in the unit that suits it (µs below 10 ms, else ms).
pub fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.0}µs")
    } else {
        format!("{:.1}ms", us / 1000.0)
    }
}

/// Formats a rate or count compactly.
pub fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let lat = (1..=100).map(Duration::from_micros).collect();
        let s = Samples {
            lat,
            wall: Duration::from_secs(1),
        }
        .summary();
        assert_eq!(s.ops, 100);
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert!((s.per_sec - 100.0).abs() < 1e-9);
    }

    #[test]
    fn empty_is_zero() {
        let s = Samples::default().summary();
        assert_eq!(s.ops, 0);
        assert_eq!(s.p50, Duration::ZERO);
    }
}
