//! Reconnect delays: capped exponential backoff with jitter from a seeded generator.

use super::Instant;
use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fully determined by its seed,
/// which is all jitter needs. Not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Backoff parameters. Defaults are client-go's reflector: 800 ms doubling to 30 s, jitter
/// adding up to 100 %, reset after 2 minutes without failure.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Base delay of the first retry.
    pub initial: Duration,
    /// Cap of the base delay (the jittered delay can reach `max * (1 + jitter)`).
    pub max: Duration,
    /// Growth factor of the base delay per consecutive failure.
    pub factor: u32,
    /// Up to this fraction of the base delay is added at random (clamped to 0..=1).
    pub jitter: f64,
    /// A failure after at least this long of uninterrupted success starts over at `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(800),
            max: Duration::from_secs(30),
            factor: 2,
            jitter: 1.0,
            reset_after: Duration::from_secs(120),
        }
    }
}

/// Consecutive-failure counter turning failures into delays.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    cfg: BackoffConfig,
    /// Jitter in millionths of the base delay, so the arithmetic stays in integers.
    jitter_ppm: u128,
    failures: u32,
    healthy_since: Option<Instant>,
    rng: SplitMix64,
}

impl Backoff {
    pub(crate) fn new(mut cfg: BackoffConfig, seed: u64) -> Self {
        // A zero delay would let a failing peer spin the caller's loop.
        cfg.initial = cfg.initial.max(Duration::from_millis(1));
        cfg.max = cfg.max.max(cfg.initial);
        cfg.factor = cfg.factor.max(1);
        let jitter = if cfg.jitter.is_finite() {
            cfg.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Backoff {
            jitter_ppm: (jitter * 1_000_000.0) as u128,
            cfg,
            failures: 0,
            healthy_since: None,
            rng: SplitMix64::new(seed),
        }
    }

    /// Notes that things work (a list completed, a watch delivered an event).
    pub(crate) fn succeeded(&mut self, now: Instant) {
        self.healthy_since.get_or_insert(now);
    }

    /// The delay before retrying after a failure at `now`.
    pub(crate) fn next_delay(&mut self, now: Instant) -> Duration {
        if let Some(since) = self.healthy_since.take()
            && now.saturating_duration_since(since) >= self.cfg.reset_after
        {
            self.failures = 0;
        }
        let mut base = self.cfg.initial;
        for _ in 0..self.failures {
            base = base.saturating_mul(self.cfg.factor);
            if base >= self.cfg.max {
                break;
            }
        }
        let base = base.min(self.cfg.max);
        self.failures = self.failures.saturating_add(1);
        let span = base.as_nanos() * self.jitter_ppm / 1_000_000;
        // Below 2^32 * span <= 2^32 * Duration::MAX in nanoseconds: no u128 overflow.
        let extra = (span * u128::from(self.rng.next_u64() >> 32)) >> 32;
        let extra = u64::try_from(extra).unwrap_or(u64::MAX);
        base.saturating_add(Duration::from_nanos(extra))
    }

    /// Consecutive failures counted so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn delays_grow_within_jitter_and_cap() {
        let mut b = Backoff::new(BackoffConfig::default(), 7);
        let mut bases = Vec::new();
        for _ in 0..10 {
            let d = b.next_delay(at(0));
            let base = Duration::from_millis(800)
                .saturating_mul(1 << bases.len().min(20))
                .min(Duration::from_secs(30));
            assert!(d >= base && d < base * 2, "{d:?} outside [{base:?}, 2x)");
            bases.push(base);
        }
        assert_eq!(bases[5], Duration::from_secs(25_600) / 1000);
        assert_eq!(bases[6], Duration::from_secs(30));
        assert_eq!(bases[9], Duration::from_secs(30));
    }

    #[test]
    fn no_jitter_is_exact() {
        let cfg = BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        };
        let mut b = Backoff::new(cfg, 0);
        let got: Vec<_> = (0..7).map(|_| b.next_delay(at(0)).as_millis()).collect();
        assert_eq!(got, [800, 1600, 3200, 6400, 12800, 25600, 30000]);
    }

    #[test]
    fn resets_only_after_long_enough_health() {
        let cfg = BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        };
        let mut b = Backoff::new(cfg, 0);
        b.next_delay(at(0));
        b.next_delay(at(1));
        // Healthy for a moment only: keeps growing.
        b.succeeded(at(5));
        assert_eq!(b.next_delay(at(6)), Duration::from_millis(3200));
        // Healthy for two minutes: starts over.
        b.succeeded(at(10));
        assert_eq!(b.next_delay(at(130)), Duration::from_millis(800));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn same_seed_same_delays() {
        let run = |seed| {
            let mut b = Backoff::new(BackoffConfig::default(), seed);
            (0..8).map(|_| b.next_delay(at(0))).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
