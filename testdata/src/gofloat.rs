//! Go's `strconv.FormatFloat(v, 'g', -1, 64)`, the way the Prometheus Go client prints
//! sample values in the text exposition format.
//!
//! Shortest round-trip digits (Rust's `{:e}` yields the same digits as Go's shortest
//! mode), then `%g` switching with the exponent precision Go uses for shortest output (6):
//! decimal notation when the decimal exponent is in −4..=5, otherwise `d.ddde±XX` with at
//! least two exponent digits.

use std::fmt::Write as _;

/// Appends `v` rendered exactly as Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
///
/// `495616` → `495616`, `1e6` → `1e+06`, `12533760` → `1.253376e+07`, `1e-5` → `1e-05`,
/// NaN → `NaN`, infinities → `+Inf` / `-Inf`, negative zero → `-0`. Does not allocate.
pub fn write_go_float(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    // `{:e}` of an f64 is at most ~25 bytes (`-d.dddddddddddddddde-308`).
    let mut buf = StackBuf::default();
    // Writing into a fixed buffer large enough for any f64 cannot fail; if it somehow did,
    // the parse below sees a truncated string, which is still handled without panicking.
    let _ = write!(buf, "{v:e}");
    let text = buf.as_bytes();

    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_pos = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let (mantissa, exp_text) = text.split_at(e_pos);
    let exp = parse_exp(exp_text.get(1..).unwrap_or(&[]));

    // Significant digits without the decimal point: "1.253376" -> "1253376".
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for &b in mantissa {
        if b.is_ascii_digit() && nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let digits = &digits[..nd];

    if negative {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        write_exp_form(digits, exp, out);
    } else {
        write_fixed_form(digits, exp, out);
    }
}

/// `d[.ddd]e±XX`, Go's `%e` with the shortest digits.
fn write_exp_form(digits: &[u8], exp: i32, out: &mut Vec<u8>) {
    let (first, rest) = digits.split_first().unwrap_or((&b'0', &[]));
    out.push(*first);
    if !rest.is_empty() {
        out.push(b'.');
        out.extend_from_slice(rest);
    }
    out.push(b'e');
    out.push(if exp < 0 { b'-' } else { b'+' });
    let e = exp.unsigned_abs();
    if e >= 100 {
        out.push(b'0' + (e / 100) as u8);
    }
    out.push(b'0' + (e / 10 % 10) as u8);
    out.push(b'0' + (e % 10) as u8);
}

/// Go's `%f` with as many fraction digits as the shortest representation needs.
fn write_fixed_form(digits: &[u8], exp: i32, out: &mut Vec<u8>) {
    // Position of the decimal point relative to the first digit.
    let dp = exp + 1;
    let nd = digits.len() as i32;
    let digit_at = |i: i32| -> u8 {
        if (0..nd).contains(&i) {
            digits[i as usize]
        } else {
            b'0'
        }
    };
    if dp > 0 {
        for i in 0..dp {
            out.push(digit_at(i));
        }
    } else {
        out.push(b'0');
    }
    let frac = (nd - dp).max(0);
    if frac > 0 {
        out.push(b'.');
        for i in 0..frac {
            out.push(digit_at(dp + i));
        }
    }
}

fn parse_exp(text: &[u8]) -> i32 {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .filter(|b| b.is_ascii_digit())
        .fold(0i32, |acc, &b| {
            acc.saturating_mul(10).saturating_add(i32::from(b - b'0'))
        });
    if neg { -magnitude } else { magnitude }
}

/// A fixed-size `fmt::Write` sink, so formatting a float needs no heap allocation.
#[derive(Debug)]
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        StackBuf {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl StackBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let bytes = s.as_bytes();
        let end = self.len + bytes.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut out = Vec::new();
        write_go_float(v, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn spec_examples() {
        assert_eq!(go(495616.0), "495616");
        assert_eq!(go(1_000_000.0), "1e+06");
        assert_eq!(go(12_533_760.0), "1.253376e+07");
        assert_eq!(go(1_616_273_408.0), "1.616273408e+09");
        assert_eq!(go(13638.443124082), "13638.443124082");
        assert_eq!(go(357.35491), "357.35491");
        assert_eq!(go(4.710169), "4.710169");
        assert_eq!(go(0.0001), "0.0001");
        assert_eq!(go(0.00001), "1e-05");
        assert_eq!(go(1.633252712e9), "1.633252712e+09");
    }

    #[test]
    fn specials_and_small_integers() {
        assert_eq!(go(f64::NAN), "NaN");
        assert_eq!(go(f64::INFINITY), "+Inf");
        assert_eq!(go(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go(0.0), "0");
        assert_eq!(go(-0.0), "-0");
        assert_eq!(go(1.0), "1");
        assert_eq!(go(-2.5), "-2.5");
        assert_eq!(go(100_000.0), "100000");
        assert_eq!(go(999_999.0), "999999");
    }

    #[test]
    fn values_from_real_payloads() {
        assert_eq!(go(22_351_872.0), "2.2351872e+07");
        assert_eq!(go(5_242_880.0), "5.24288e+06");
        assert_eq!(go(1.748765564917263e9), "1.748765564917263e+09");
        assert_eq!(go(1.7487655514021106e9), "1.7487655514021106e+09");
        assert_eq!(go(-6.7953645788713455e9), "-6.7953645788713455e+09");
        assert_eq!(go(861234.567891234), "861234.567891234");
        assert_eq!(go(0.412345678), "0.412345678");
        assert_eq!(go(4e-10), "4e-10");
        assert_eq!(go(1e100), "1e+100");
        assert_eq!(go(2.5e-308), "2.5e-308");
        assert_eq!(go(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(go(5e-324), "5e-324");
    }

    #[test]
    fn round_trips() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let text = go(v);
            let back: f64 = text.parse().expect("Go float text parses");
            assert_eq!(back.to_bits(), v.to_bits(), "{v:e} rendered as {text}");
        }
    }
}
