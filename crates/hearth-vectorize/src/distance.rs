//! The three metrics an index is created with, as distances the graph
//! orders by (smaller is closer) and as the scores Workers returns.

use std::fmt;
use std::str::FromStr;

/// How an index compares vectors; fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Cosine similarity; vectors are stored normalised, so it is a dot product.
    Cosine,
    /// Euclidean (L2) distance.
    Euclidean,
    /// Inner product.
    DotProduct,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
            Metric::DotProduct => "dot-product",
        }
    }

    /// Prepares a vector for storage or as a query: cosine normalises it.
    pub fn prepare(self, v: &mut [f32]) {
        if self == Metric::Cosine {
            let norm = dot(v, v).sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }

    /// The graph's distance between two prepared vectors (smaller is closer).
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => 1.0 - dot(a, b),
            Metric::Euclidean => l2_squared(a, b),
            Metric::DotProduct => -dot(a, b),
        }
    }

    /// The score Workers reports for a distance: similarity for cosine and
    /// dot-product (higher is closer), the distance itself for euclidean.
    pub fn score(self, distance: f32) -> f64 {
        match self {
            Metric::Cosine => f64::from(1.0 - distance),
            Metric::Euclidean => f64::from(distance.max(0.0).sqrt()),
            Metric::DotProduct => f64::from(-distance),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" => Ok(Metric::Euclidean),
            "dot-product" => Ok(Metric::DotProduct),
            other => Err(format!(
                "unknown metric \"{other}\": expected cosine, euclidean or dot-product"
            )),
        }
    }
}

/// Eight independent sums so the compiler can keep them in vector registers
/// (a single running sum must be added in order and cannot be).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        sum += a[i] * b[i];
    }
    sum
}

#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        let d = a[i] - b[i];
        sum += d * d;
    }
    sum
}
