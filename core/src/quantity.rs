//! Kubernetes `resource.Quantity` as the Metrics API renders it.
//!
//! Upstream builds each usage value as an integer with a decimal scale and lets the
//! Kubernetes canonicaliser print it; this module reproduces that text byte for byte
//! (`1423612395n`, `250m`, `1`, `3546184Ki`, `1000000`) and parses quantity strings back.

use std::fmt::Write as _;

/// How a quantity prefers to be printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Powers of ten: `n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSi,
    /// Powers of 1024: `Ki` ... `Ei`; small or fractional values fall back to decimal.
    BinarySi,
}

/// `value × 10^scale` in `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub value: i64,
    pub scale: i32,
    pub format: Format,
}

impl Quantity {
    /// Upstream's conversion from an unsigned count: values above `i64::MAX` lose their
    /// last decimal digit and gain one in scale (unreachable in practice).
    pub fn from_u64(value: u64, scale: i32, format: Format) -> Quantity {
        match i64::try_from(value) {
            Ok(value) => Quantity {
                value,
                scale,
                format,
            },
            // value / 10 < 2^61 always fits.
            Err(_) => Quantity {
                value: (value / 10) as i64,
                scale: scale + 1,
                format,
            },
        }
    }

    /// CPU usage: nanocores, scale −9, decimal.
    pub fn cpu_nanocores(nanocores: u64) -> Quantity {
        Quantity::from_u64(nanocores, -9, Format::DecimalSi)
    }

    /// Memory: bytes, scale 0, binary.
    pub fn memory_bytes(bytes: u64) -> Quantity {
        Quantity::from_u64(bytes, 0, Format::BinarySi)
    }

    /// Appends the canonical text.
    pub fn write_canonical(&self, out: &mut String) {
        if self.value == 0 {
            out.push('0');
            return;
        }
        if self.format == Format::BinarySi
            && let Some(whole) = self.as_integer()
            && whole.unsigned_abs() >= 1024
        {
            write_binary(whole, out);
            return;
        }
        write_decimal(i128::from(self.value), self.scale, out);
    }

    pub fn to_canonical(&self) -> String {
        let mut s = String::with_capacity(24);
        self.write_canonical(&mut s);
        s
    }

    /// The exact sum, in the format of `self` (how Table cells sum container usage).
    /// Saturates instead of overflowing; usage values are far from that range.
    pub fn add(&self, other: &Quantity) -> Quantity {
        let scale = self.scale.min(other.scale);
        let widen = |q: &Quantity| {
            let shift = u32::try_from(q.scale - scale).unwrap_or(0);
            10i128
                .checked_pow(shift)
                .and_then(|f| i128::from(q.value).checked_mul(f))
                .unwrap_or(i128::MAX)
        };
        let mut sum = widen(self).saturating_add(widen(other));
        let mut scale = scale;
        // Back into 64 bits, dropping digits only if it must (as upstream's overflow path).
        while i64::try_from(sum).is_err() {
            sum /= 10;
            scale += 1;
        }
        Quantity {
            value: i64::try_from(sum).unwrap_or(i64::MAX),
            scale,
            format: self.format,
        }
    }

    /// The value as an integer when it is one and fits in 64 bits.
    fn as_integer(&self) -> Option<i64> {
        if self.scale < 0 {
            let div = 10i64.checked_pow(self.scale.unsigned_abs())?;
            return (self.value % div == 0).then_some(self.value / div);
        }
        self.value
            .checked_mul(10i64.checked_pow(self.scale as u32)?)
    }
}

/// Appends a decimal integer without going through `fmt` (lists render millions of
/// quantities).
fn push_int(out: &mut String, v: i128) {
    let mut digits = [0u8; 40];
    let mut i = digits.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn write_binary(whole: i64, out: &mut String) {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut m = whole;
    let mut k = 0;
    while k < 6 && m % 1024 == 0 {
        m /= 1024;
        k += 1;
    }
    push_int(out, i128::from(m));
    out.push_str(SUFFIXES[k]);
}

fn write_decimal(mut m: i128, mut e: i32, out: &mut String) {
    while m % 10 == 0 && m != 0 {
        m /= 10;
        e += 1;
    }
    // Move the exponent down to a multiple of three (an SI prefix).
    match e.rem_euclid(3) {
        1 => {
            m *= 10;
            e -= 1;
        }
        2 => {
            m *= 100;
            e -= 2;
        }
        _ => {}
    }
    let suffix = match e {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => {
            // Outside the SI range Kubernetes switches to an exponent.
            let _ = write!(out, "{m}e{e}");
            return;
        }
    };
    push_int(out, m);
    out.push_str(suffix);
}

/// Why a quantity string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Syntax,
    /// Finer than 10^-9 or too large for 128 bits.
    OutOfRange,
}

/// Parses a quantity string (`250m`, `1.5Gi`, `12e3`, `-7n`) into an exact count of
/// 10^-9 units (nano-units). Rejects values finer than a nano-unit.
pub fn parse_nanos(s: &str) -> Result<i128, ParseError> {
    let b = s.as_bytes();
    let (negative, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut mantissa: i128 = 0;
    let mut exp10: i32 = 0;
    let mut digits = 0;
    let mut seen_dot = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(i128::from(c - b'0')))
                    .ok_or(ParseError::OutOfRange)?;
                if seen_dot {
                    exp10 -= 1;
                }
                digits += 1;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return Err(ParseError::Syntax);
    }
    let suffix = &s[i..];
    let (pow10, pow1024): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E']).ok_or(ParseError::Syntax)?;
            let valid = !rest.is_empty()
                && rest
                    .trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|c| c.is_ascii_digit())
                && rest.len() < 6;
            if !valid {
                return Err(ParseError::Syntax);
            }
            (rest.parse::<i32>().map_err(|_| ParseError::Syntax)?, 0)
        }
    };
    let mut value = mantissa;
    for _ in 0..pow1024 {
        value = value.checked_mul(1024).ok_or(ParseError::OutOfRange)?;
    }
    // value × 10^(exp10 + pow10) expressed in units of 10^-9.
    let shift = exp10 + pow10 + 9;
    if shift >= 0 {
        let factor = 10i128
            .checked_pow(shift as u32)
            .ok_or(ParseError::OutOfRange)?;
        value = value.checked_mul(factor).ok_or(ParseError::OutOfRange)?;
    } else {
        let divisor = 10i128
            .checked_pow(shift.unsigned_abs())
            .ok_or(ParseError::OutOfRange)?;
        if value % divisor != 0 {
            return Err(ParseError::OutOfRange);
        }
        value /= divisor;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_canonical_forms_from_the_spec() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (7, "7n"),
            (10, "10n"),
            (1_500, "1500n"),
            (20_000, "20u"),
            (4_800_000, "4800u"),
            (2_500_000, "2500u"),
            (4_710_169, "4710169n"),
            (1_500_000, "1500u"),
            (26_128_314, "26128314n"),
            (20_000_000, "20m"),
            (100_000_000, "100m"),
            (250_000_000, "250m"),
            (500_000_000, "500m"),
            (1_000_000_000, "1"),
            (1_500_000_000, "1500m"),
            (2_500_000_000, "2500m"),
            (10_000_000_000, "10"),
            (12_000_000_000, "12"),
            (1_000_000_000_000, "1k"),
            (1_423_612_395, "1423612395n"),
        ];
        for &(n, want) in cases {
            assert_eq!(Quantity::cpu_nanocores(n).to_canonical(), want, "{n}");
        }
    }

    #[test]
    fn memory_canonical_forms_from_the_spec() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (512, "512"),
            (100, "100"),
            (600, "600"),
            (1_000, "1k"),
            (1_020, "1020"),
            (1_024, "1Ki"),
            (1_050_000, "1050000"),
            (1_000_000, "1000000"),
            (3_145_728, "3Mi"),
            (5_242_880, "5Mi"),
            (12_533_760, "12240Ki"),
            (49_065_984, "47916Ki"),
            (1_610_612_736, "1536Mi"),
            (1_616_273_408, "1578392Ki"),
            (3_631_292_416, "3546184Ki"),
            (1 << 60, "1Ei"),
            (1 << 62, "4Ei"),
        ];
        for &(b, want) in cases {
            assert_eq!(Quantity::memory_bytes(b).to_canonical(), want, "{b}");
        }
    }

    /// Spec case 43: values above i64::MAX lose a digit and gain a scale step.
    #[test]
    fn case_43_quantity_conversion_overflow() {
        let max = i64::MAX as u64;
        let q = Quantity::from_u64(max + 10, 0, Format::DecimalSi);
        assert_eq!((q.value, q.scale), ((i64::MAX / 10) + 1, 1));
        let q = Quantity::from_u64(max + 20, 0, Format::DecimalSi);
        assert_eq!((q.value, q.scale), ((i64::MAX / 10) + 2, 1));
        let q = Quantity::from_u64(max - 10, 0, Format::DecimalSi);
        assert_eq!((q.value, q.scale), (i64::MAX - 10, 0));
        let q = Quantity::from_u64(100, 0, Format::DecimalSi);
        assert_eq!((q.value, q.scale), (100, 0));
        // Still renders sensibly: 922337203685477581 × 10 bytes.
        assert_eq!(
            Quantity::memory_bytes(max + 10).to_canonical(),
            "9223372036854775810"
        );
    }

    /// Table cells sum a pod's containers (metrics-API spec 4.6 examples).
    #[test]
    fn sums_are_canonicalised() {
        let cpu =
            Quantity::cpu_nanocores(2_500_000).add(&Quantity::from_u64(100, -3, Format::DecimalSi));
        assert_eq!(cpu.to_canonical(), "102500u");
        let mem = Quantity::memory_bytes(9648 * 1024).add(&Quantity::memory_bytes(47916 * 1024));
        assert_eq!(mem.to_canonical(), "57564Ki");
        let max = Quantity::from_u64(i64::MAX as u64, 0, Format::DecimalSi);
        assert_eq!(
            max.add(&max).scale,
            1,
            "overflow drops a digit instead of wrapping"
        );
    }

    #[test]
    fn parse_examples() {
        assert_eq!(parse_nanos("250m"), Ok(250_000_000));
        assert_eq!(parse_nanos("1"), Ok(1_000_000_000));
        assert_eq!(parse_nanos("4800u"), Ok(4_800_000));
        assert_eq!(parse_nanos("3Mi"), Ok(3_145_728_000_000_000));
        assert_eq!(parse_nanos("1.5Ki"), Ok(1_536_000_000_000));
        assert_eq!(parse_nanos("12e3"), Ok(12_000_000_000_000));
        assert_eq!(parse_nanos("-7n"), Ok(-7));
        assert_eq!(parse_nanos("0.5n"), Err(ParseError::OutOfRange));
        for bad in ["", "m", "1x", "1.2.3", "1e", "--1", "1Kii"] {
            assert_eq!(parse_nanos(bad), Err(ParseError::Syntax), "{bad}");
        }
    }
}
