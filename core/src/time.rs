//! Time as the core sees it: instants are handed in, never read from a clock.
//!
//! [`Timestamp`] is a wall-clock instant in nanoseconds since the Unix epoch (what kubelet
//! payloads carry and the API renders). Formatting follows Kubernetes' wire conventions:
//! RFC 3339 with whole seconds for timestamps, Go's `Duration.String()` for windows.

use std::fmt::{self, Write as _};
use std::time::Duration;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Nanoseconds since 1970-01-01T00:00:00Z. Signed: payloads may carry times before the
/// epoch (Go's zero time is year 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);

    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// Milliseconds since the epoch, saturating instead of overflowing.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    pub const fn from_unix_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(NANOS_PER_SEC))
    }

    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded toward negative infinity.
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// `self - earlier` when positive; `None` when `earlier` is not before `self`.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let diff = self.0.checked_sub(earlier.0)?;
        (diff > 0).then(|| Duration::from_nanos(diff as u64))
    }

    /// Adds a duration, saturating at the representable range.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(nanos))
    }

    /// Subtracts a duration, saturating at the representable range.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(nanos))
    }

    /// Parses RFC 3339 (`2025-06-10T09:40:12Z`, `2025-06-10T09:40:12.841+02:00`).
    /// Fractional seconds beyond nanoseconds are truncated. Returns `None` for anything
    /// else, including out-of-range dates.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut rest = &b[19..];
        let mut nanos: i64 = 0;
        if let Some((&b'.', frac)) = rest.split_first() {
            let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if len == 0 {
                return None;
            }
            for (i, &c) in frac[..len].iter().enumerate() {
                if i < 9 {
                    nanos = nanos * 10 + i64::from(c - b'0');
                }
            }
            for _ in len..9 {
                nanos *= 10;
            }
            rest = &frac[len..];
        }
        let offset_secs = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = digits(&[*h1, *h2])?;
                let m = digits(&[*m1, *m2])?;
                if h > 23 || m > 59 {
                    return None;
                }
                let off = h * 3600 + m * 60;
                if *sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
        secs.checked_mul(NANOS_PER_SEC)?
            .checked_add(nanos)
            .map(Timestamp)
    }

    /// Writes RFC 3339 in UTC with whole seconds (fraction truncated), as the Kubernetes
    /// API renders `metav1.Time`: `2025-06-10T09:40:27Z`.
    pub fn write_rfc3339_secs(self, out: &mut String) {
        let secs = self.unix_secs();
        let (y, mo, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let _ = write!(
            out,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        );
    }

    /// RFC 3339 with whole seconds; see [`Timestamp::write_rfc3339_secs`].
    pub fn to_rfc3339_secs(self) -> String {
        let mut s = String::with_capacity(20);
        self.write_rfc3339_secs(&mut s);
        s
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 with nanoseconds, trailing zeros trimmed (for logs and test messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(30);
        self.write_rfc3339_secs(&mut s);
        let frac = self.0.rem_euclid(NANOS_PER_SEC);
        if frac != 0 {
            s.pop();
            let digits = format!("{frac:09}");
            let _ = write!(s, ".{}Z", digits.trim_end_matches('0'));
        }
        f.write_str(&s)
    }
}

/// A point on a monotonic clock the runtime owns, as time since an arbitrary origin.
/// Scheduling uses it (wall-clock steps must not disturb the scrape loop); payload and
/// API times use [`Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(Duration::from_nanos(nanos))
    }

    pub const fn since_origin(self) -> Duration {
        self.0
    }

    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes a duration the way Go's `time.Duration.String()` does (`15.019s`, `1m0s`,
/// `1.5µs`), which is how the Metrics API renders `window`.
pub fn write_go_duration(d: Duration, out: &mut String) {
    let total = d.as_nanos();
    if total == 0 {
        out.push_str("0s");
        return;
    }
    if total < 1_000_000_000 {
        let (unit_nanos, unit) = if total < 1_000 {
            (1, "ns")
        } else if total < 1_000_000 {
            (1_000, "\u{b5}s")
        } else {
            (1_000_000, "ms")
        };
        write_fixed(total / unit_nanos, total % unit_nanos, unit_nanos, out);
        out.push_str(unit);
        return;
    }
    let secs_total = total / 1_000_000_000;
    let frac = total % 1_000_000_000;
    let hours = secs_total / 3600;
    let minutes = secs_total / 60 % 60;
    let secs = secs_total % 60;
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if secs_total >= 60 {
        let _ = write!(out, "{minutes}m");
    }
    write_fixed(secs, frac, 1_000_000_000, out);
    out.push('s');
}

/// `whole.frac` with the fraction's trailing zeros (and a bare dot) removed.
fn write_fixed(whole: u128, frac: u128, unit_nanos: u128, out: &mut String) {
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let width = unit_nanos.ilog10() as usize;
        let digits = format!("{frac:0width$}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Go's duration string as an owned `String`; see [`write_go_duration`].
pub fn go_duration(d: Duration) -> String {
    let mut s = String::new();
    write_go_duration(d, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_and_truncation() {
        let t = Timestamp::parse_rfc3339("2025-06-10T09:40:27.860Z").expect("valid");
        assert_eq!(t.unix_nanos(), 1_749_548_427_860_000_000);
        assert_eq!(t.to_rfc3339_secs(), "2025-06-10T09:40:27Z");
        assert_eq!(t.to_string(), "2025-06-10T09:40:27.86Z");
        let offset = Timestamp::parse_rfc3339("2025-06-10T11:40:27.86+02:00").expect("valid");
        assert_eq!(offset, t);
        // Nanoseconds in an i64 span 1677-09-21 to 2262-04-11; Go's zero time is outside.
        assert_eq!(Timestamp::parse_rfc3339("0001-01-01T00:00:00Z"), None);
        let early = Timestamp::parse_rfc3339("1677-09-22T00:00:00Z").expect("valid");
        assert_eq!(early.to_rfc3339_secs(), "1677-09-22T00:00:00Z");
        for bad in [
            "",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-06-10T09:40:27",
            "2025-06-10T09:40:27.Z",
            "2025-06-10T24:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn go_duration_strings() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_000, "1\u{b5}s"),
            (1_500, "1.5\u{b5}s"),
            (12_300_000, "12.3ms"),
            (10_000_000, "10ms"),
            (15_012_000_000, "15.012s"),
            (15_019_000_000, "15.019s"),
            (60_000_000_000, "1m0s"),
            (60_001_000_000, "1m0.001s"),
            (75_500_000_000, "1m15.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (13_090_000_128, "13.090000128s"),
            (12_199_999_936, "12.199999936s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ];
        for &(nanos, want) in cases {
            assert_eq!(go_duration(Duration::from_nanos(nanos)), want, "{nanos}");
        }
    }
}
