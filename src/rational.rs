//! Exact non-negative fractions for weights and cutoffs.
//!
//! Deprivation scores are compared with the cutoff `k` exactly: with 17 equal weights a float sum
//! of scores exactly equal to `k` can land just below it. Weights and `k` are kept as fractions and
//! compared by cross-multiplication in `u128`.

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

/// Greatest common divisor (binary GCD: shifts and subtractions, no 128-bit division).
pub fn gcd(a: u128, b: u128) -> u128 {
    if a == 0 || b == 0 {
        return a | b;
    }
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
}

/// Least common multiple (`None` on overflow).
pub fn lcm(a: u128, b: u128) -> Option<u128> {
    if a == 0 || b == 0 {
        return Some(0);
    }
    (a / gcd(a, b)).checked_mul(b)
}

impl Rational {
    /// Zero.
    pub const ZERO: Rational = Rational { num: 0, den: 1 };
    /// One.
    pub const ONE: Rational = Rational { num: 1, den: 1 };

    /// `num/den`, reduced. Panics if `den` is zero.
    pub fn new(num: u128, den: u128) -> Rational {
        assert!(den != 0, "zero denominator");
        let g = gcd(num, den).max(1);
        Rational { num: num / g, den: den / g }
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
        self.num as f64 / self.den as f64
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, o: Rational) -> Option<Rational> {
        let l = lcm(self.den, o.den)?;
        let a = self.num.checked_mul(l / self.den)?;
        let b = o.num.checked_mul(l / o.den)?;
        Some(Rational::new(a.checked_add(b)?, l))
    }

    /// Product, or `None` on overflow.
    pub fn checked_mul(self, o: Rational) -> Option<Rational> {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        Some(Rational::new((self.num / g1).checked_mul(o.num / g2)?, (self.den / g2).checked_mul(o.den / g1)?))
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
        // Both denominators are below 2^64 in practice; fall back to floats only if the cross
        // products overflow (they cannot for weights parsed from text).
        match (self.num.checked_mul(o.den), o.num.checked_mul(self.den)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.to_f64().total_cmp(&o.to_f64()),
        }
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
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
            if b == 0 {
                return Err(bad());
            }
            return Ok(Rational::new(a, b));
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
        Ok(Rational::new(int.checked_mul(den).ok_or_else(bad)? + frac, den))
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
