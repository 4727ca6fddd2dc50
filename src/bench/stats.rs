//! Latency samples reduced to the figures the report prints: median, 99th percentile.

use std::time::Duration;

/// Percentiles of a set of latency samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Summary {
    /// Summarises `samples` (any order); all zero when empty.
    pub fn of(mut samples: Vec<Duration>) -> Summary {
        samples.sort_unstable();
        Summary {
            count: samples.len(),
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
        }
    }
}

/// Nearest-rank percentile `p` (0–100) of `sorted`; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in milliseconds, for printing.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `later - earlier` in milliseconds, negative when `later` is smaller (noise can do that).
pub fn diff_ms(later: Duration, earlier: Duration) -> f64 {
    ms(later) - ms(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = Summary::of(samples.into_iter().rev().collect());
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p99, Duration::from_millis(99));
    }

    #[test]
    fn small_and_empty_sets() {
        assert_eq!(Summary::of(Vec::new()), Summary::default());
        let one = Summary::of(millis(&[7]));
        assert_eq!(
            (one.p50, one.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        let three = Summary::of(millis(&[30, 10, 20]));
        assert_eq!(three.p50, Duration::from_millis(20));
        assert_eq!(three.p99, Duration::from_millis(30));
    }

    #[test]
    fn differences_may_be_negative() {
        let (a, b) = (Duration::from_micros(1500), Duration::from_micros(2000));
        assert!((diff_ms(a, b) + 0.5).abs() < 1e-9);
        assert!((ms(b) - 2.0).abs() < 1e-9);
    }
}
