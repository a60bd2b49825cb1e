//! Exact non-negative fractions for weights and cutoffs.
//!
//! Deprivation scores are compared with the cutoff `k` exactly: with 17 equal weights a float sum
//! of scores exactly equal to `k` can land just below it. Weights and `k` are kept as fractions and
//! compared by cross-multiplication in `u128`.
//!
//! ```
//! use tpmap::rational::Rational;
//! let k: Rational = "1/3".parse()?;
//! assert!(k > "0.333333".parse()?); // exact: no float lands just under k
//! assert_eq!("33.3%".parse::<Rational>()?, Rational::new(333, 1000));
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::Error;

/// A non-negative fraction `num/den`, always reduced, `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rational {
    num: u128,
    den: u128,
}

/// Binary GCD of two non-zero unsigned integers of one width. A macro, not a generic function:
/// std has no trait for `trailing_zeros` and the shifts of both `u64` and `u128`.
macro_rules! binary_gcd {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        let shift = (a | b).trailing_zeros();
        let (mut a, mut b) = (a >> a.trailing_zeros(), b);
        while b != 0 {
            b >>= b.trailing_zeros();
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            b -= a;
        }
        a << shift
    }};
}

/// Greatest common divisor (binary GCD: shifts and subtractions, no 128-bit division).
pub fn gcd(a: u128, b: u128) -> u128 {
    if a == 0 || b == 0 {
        return a | b;
    }
    // In 64 bits where both fit (most fractions: counts of households and people).
    if let (Ok(a), Ok(b)) = (u64::try_from(a), u64::try_from(b)) {
        return u128::from(binary_gcd!(a, b));
    }
    binary_gcd!(a, b)
}

/// The full 256-bit product of two `u128`s, as (high, low) halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = (1 << 64) - 1;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    // Middle terms, with their carries into the high half.
    let (mid, carry1) = p01.overflowing_add(p10);
    let (low, carry2) = p00.overflowing_add(mid << 64);
    let high = p11 + (mid >> 64) + ((carry1 as u128) << 64) + carry2 as u128;
    (high, low)
}

/// Compares `a/b` with `c/d` exactly (no float, no overflow: the cross products are 256-bit).
/// Denominators must be positive.
///
/// ```
/// use tpmap::rational::cmp_fractions;
/// use std::cmp::Ordering;
/// assert_eq!(cmp_fractions(1, 3, 333_333_333, 1_000_000_000), Ordering::Greater);
/// assert_eq!(cmp_fractions(u64::MAX as u128, 1, 1, 300_000_000_000_000_000_000_000_000_000_000_000_000), Ordering::Greater);
/// ```
pub fn cmp_fractions(a: u128, b: u128, c: u128, d: u128) -> Ordering {
    mul_wide(a, d).cmp(&mul_wide(c, b))
}

/// Least common multiple (`None` on overflow).
pub fn lcm(a: u128, b: u128) -> Option<u128> {
    if a == 0 || b == 0 {
        return Some(0);
    }
    (a / gcd(a, b)).checked_mul(b)
}

impl Rational {
    /// 0/1.
    pub const ZERO: Rational = Rational { num: 0, den: 1 };
    /// 1/1.
    pub const ONE: Rational = Rational { num: 1, den: 1 };

    /// `num/den`, reduced. Panics if `den` is zero: use [`Rational::checked_new`] for values
    /// from input.
    pub fn new(num: u128, den: u128) -> Rational {
        Rational::checked_new(num, den).expect("a fraction with a zero denominator")
    }

    /// `num/den`, reduced; `None` when `den` is zero.
    pub fn checked_new(num: u128, den: u128) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        // 64-bit division where the numbers allow (a 128-bit one is a library call).
        if let (Ok(n), Ok(d), Ok(g)) = (u64::try_from(num), u64::try_from(den), u64::try_from(g)) {
            return Some(Rational { num: u128::from(n / g), den: u128::from(d / g) });
        }
        Some(Rational { num: num / g, den: den / g })
    }

    /// Numerator (reduced).
    pub fn num(&self) -> u128 {
        self.num
    }

    /// Denominator (reduced).
    pub fn den(&self) -> u128 {
        self.den
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        // Through u64 where the terms fit: the same rounding, without two library calls (a
        // national roll-up converts every indicator's weight for each of its 92 k rows).
        match (u64::try_from(self.num), u64::try_from(self.den)) {
            (Ok(n), Ok(d)) => n as f64 / d as f64,
            _ => self.num as f64 / self.den as f64,
        }
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, o: Rational) -> Option<Rational> {
        let l = lcm(self.den, o.den)?;
        let a = self.num.checked_mul(l / self.den)?;
        let b = o.num.checked_mul(l / o.den)?;
        Rational::checked_new(a.checked_add(b)?, l)
    }

    /// Product, or `None` on overflow.
    pub fn checked_mul(self, o: Rational) -> Option<Rational> {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        Rational::checked_new((self.num / g1).checked_mul(o.num / g2)?, (self.den / g2).checked_mul(o.den / g1)?)
    }

    /// Quotient, or `None` on overflow or division by zero.
    pub fn checked_div(self, o: Rational) -> Option<Rational> {
        if o.num == 0 {
            return None;
        }
        self.checked_mul(Rational { num: o.den, den: o.num })
    }
}

impl Ord for Rational {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_fractions(self.num, self.den, o.num, o.den)
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // u128 formatting divides by powers of ten in 128 bits: 64-bit where the numbers fit.
        match (u64::try_from(self.num), u64::try_from(self.den)) {
            (Ok(n), Ok(1)) => write!(f, "{n}"),
            (Ok(n), Ok(d)) => write!(f, "{n}/{d}"),
            _ if self.den == 1 => write!(f, "{}", self.num),
            _ => write!(f, "{}/{}", self.num, self.den),
        }
    }
}

impl Serialize for Rational {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl FromStr for Rational {
    type Err = Error;
    /// Parses `3`, `1/15`, `0.0667` (exactly 667/10000) or `33.3%`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Parse(format!("not a non-negative fraction or decimal: '{s}'"));
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let r: Rational = p.parse()?;
            return r.checked_div(Rational::new(100, 1)).ok_or_else(bad);
        }
        if let Some((a, b)) = t.split_once('/') {
            let (a, b): (u128, u128) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            return Rational::checked_new(a, b).ok_or_else(bad);
        }
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|c| c.is_ascii_digit())
            || !frac.bytes().all(|c| c.is_ascii_digit())
            || frac.len() > 18
        {
            return Err(bad());
        }
        let den = 10u128.pow(frac.len() as u32);
        let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
        let frac: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
        Ok(Rational::new(int.checked_mul(den).and_then(|v| v.checked_add(frac)).ok_or_else(bad)?, den))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_gcd_agrees_with_euclid() {
        fn euclid(mut a: u128, mut b: u128) -> u128 {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        }
        let xs = [0u128, 1, 2, 12, 60, 97, 1 << 40, 3 * (1 << 70), u64::MAX as u128 * 6, u128::MAX / 3];
        for &a in &xs {
            for &b in &xs {
                assert_eq!(gcd(a, b), euclid(a, b), "{a} {b}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn reduction_and_text_are_the_same_in_64_and_128_bits(
            a in proptest::prelude::any::<u64>(), b in 1u64.., k in 1u128..1000
        ) {
            // The same fraction with 64-bit terms and scaled past 64 bits.
            fn euclid(mut a: u128, mut b: u128) -> u128 {
                while b != 0 {
                    (a, b) = (b, a % b);
                }
                a
            }
            let (a, b) = (u128::from(a), u128::from(b));
            proptest::prop_assert_eq!(gcd(a, b), euclid(a, b));
            let small = Rational::new(a, b);
            let big = Rational::new(a * (k << 50), b * (k << 50));
            proptest::prop_assert_eq!(small, big);
            proptest::prop_assert_eq!(small.to_string(), big.to_string());
            // The 64-bit conversion rounds as the 128-bit one does.
            proptest::prop_assert_eq!(small.to_f64().to_bits(), (small.num() as f64 / small.den() as f64).to_bits());
            let g = euclid(a, b).max(1);
            let text = if b / g == 1 { format!("{}", a / g) } else { format!("{}/{}", a / g, b / g) };
            proptest::prop_assert_eq!(small.to_string(), text);
        }
    }

    #[test]
    fn parse_and_compare() {
        let r = |s: &str| s.parse::<Rational>().unwrap();
        assert_eq!(r("2/4"), Rational::new(1, 2));
        assert_eq!(r("0.25"), Rational::new(1, 4));
        assert_eq!(r("33.3%"), Rational::new(333, 1000));
        assert_eq!(r("3"), Rational::new(3, 1));
        assert!(r("1/3") > r("0.333333"));
        for bad in ["", "-1", "1/0", "a", "1.2.3", "."] {
            assert!(bad.parse::<Rational>().is_err(), "{bad}");
        }
    }

    #[test]
    fn wide_comparison_is_exact() {
        let big = u128::MAX;
        assert_eq!(cmp_fractions(big, big - 1, big - 1, big - 2), Ordering::Less);
        assert_eq!(cmp_fractions(big, 1, big, 1), Ordering::Equal);
        assert_eq!(Rational::new(big, 3).cmp(&Rational::new(big - 1, 3)), Ordering::Greater);
        // Against plain u128 products wherever those do not overflow.
        let xs = [0u128, 1, 2, 3, 7, 1 << 40, (1 << 63) + 5, u64::MAX as u128];
        for &a in &xs {
            for &b in xs.iter().filter(|&&b| b > 0) {
                for &c in &xs {
                    for &d in xs.iter().filter(|&&d| d > 0) {
                        assert_eq!(cmp_fractions(a, b, c, d), (a * d).cmp(&(c * b)), "{a}/{b} vs {c}/{d}");
                    }
                }
            }
        }
        // Integer part at u128::MAX with a fraction: overflow is an error, never a wrap.
        assert!(format!("{big}.9").parse::<Rational>().is_err());
    }

    #[test]
    fn nested_tpmap_weights_sum_exactly() {
        // TPMAP's 17 indicators nested in 5 equal dimensions (4, 4, 4, 3 and 2 indicators): the
        // float sum of all weights is 0.9999999999999999, the exact one is 1.
        let per_dim = [4u128, 4, 4, 3, 2];
        let weights: Vec<Rational> =
            per_dim.iter().flat_map(|&n| (0..n).map(move |_| Rational::new(1, 5 * n))).collect();
        let exact = weights.iter().fold(Rational::ZERO, |a, &w| a.checked_add(w).unwrap());
        assert_eq!(exact, Rational::ONE);
        let float: f64 = per_dim.iter().flat_map(|&n| (0..n).map(move |_| 1.0 / (5.0 * n as f64))).sum();
        assert!(float < 1.0);
        assert!(Rational::ONE >= exact, "a unit deprived in everything meets k = 1 exactly");
    }
}
