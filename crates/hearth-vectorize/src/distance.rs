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

/// Whether this CPU runs the AVX2/FMA kernels (checked once, then cached
/// by the standard library).
#[inline]
fn wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The dot product of two f32 vectors.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: the CPU was checked for AVX2 and FMA just above.
        return unsafe { x86::dot_f32(a, b) };
    }
    dot_portable(a, b)
}

/// The squared euclidean distance between two f32 vectors.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: the CPU was checked for AVX2 and FMA just above.
        return unsafe { x86::l2_f32(a, b) };
    }
    l2_portable(a, b)
}

/// The dot product of two int8 vectors of codes from [`quantise`] (in
/// -127..=127; exact in i32 up to 2^17 values).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: the CPU was checked for AVX2 just above.
        return unsafe { x86::dot_i8(a, b) };
    }
    dot_i8_portable(a, b)
}

/// Quantises `v` to int8 codes in `out` (appended) with one scale per
/// vector, so that `v[i] ~ code[i] * scale`; returns the scale (0 for a
/// zero vector). Codes keep a quarter of the memory of f32 values, which
/// is what a scan over many candidates is bound by.
pub fn quantise(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.extend(std::iter::repeat_n(0, v.len()));
        return 0.0;
    }
    let to_code = 127.0 / max;
    out.extend(
        v.iter()
            .map(|x| (x * to_code).round().clamp(-127.0, 127.0) as i8),
    );
    max / 127.0
}

/// Eight independent sums so the compiler can keep them in vector registers
/// (a single running sum must be added in order and cannot be).
#[inline]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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
fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
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

#[inline]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; 16];
    let chunks = n / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for i in 0..16 {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for i in chunks * 16..n {
        sum += i32::from(a[i]) * i32::from(b[i]);
    }
    sum
}

/// AVX2/FMA kernels: 32 f32 or 32 int8 values per step in four or two
/// independent accumulators, the tail done one by one.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn sum8(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8j + 8 <= n, within both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    )
                };
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, within both slices.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let all = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut sum = sum8(all);
        for k in i..n {
            sum += a[k] * b[k];
        }
        sum
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8j + 8 <= n, within both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    )
                };
                let d = _mm256_sub_ps(x, y);
                *acc = _mm256_fmadd_ps(d, d, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, within both slices.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            let d = _mm256_sub_ps(x, y);
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            i += 8;
        }
        let all = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut sum = sum8(all);
        for k in i..n {
            let d = a[k] - b[k];
            sum += d * d;
        }
        sum
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n, within both slices; unaligned loads.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(pa.add(i).cast()),
                    _mm256_loadu_si256(pb.add(i).cast()),
                )
            };
            // |x| (as unsigned) times y with x's sign, pairs summed to i16:
            // at most 2 * 127 * 127, as codes are never -128.
            let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
            i += 32;
        }
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        let mut sum = _mm_cvtsi128_si32(s);
        for k in i..n {
            sum += i32::from(a[k]) * i32::from(b[k]);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths around every step and tail of the kernels.
    #[test]
    fn kernels_agree_with_plain_sums() {
        let mut s = 7u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 384, 1536] {
            let a: Vec<f32> = (0..n)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..n)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-3, "dot, n = {n}");
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from((x - y) * (x - y)))
                .sum();
            assert!(
                (f64::from(l2_squared(&a, &b)) - want).abs() < 1e-3,
                "l2, n = {n}"
            );
            assert!((dot_portable(&a, &b) - dot(&a, &b)).abs() < 1e-3, "n = {n}");
            assert!(
                (l2_portable(&a, &b) - l2_squared(&a, &b)).abs() < 1e-3,
                "n = {n}"
            );
            let (mut qa, mut qb) = (Vec::new(), Vec::new());
            let (sa, sb) = (quantise(&a, &mut qa), quantise(&b, &mut qb));
            let want: i32 = qa
                .iter()
                .zip(&qb)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum();
            assert_eq!(dot_i8(&qa, &qb), want, "dot_i8, n = {n}");
            assert_eq!(dot_i8_portable(&qa, &qb), want, "dot_i8_portable, n = {n}");
            // The codes' dot approximates the values' dot.
            let approx = f64::from(want as f32 * sa * sb);
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!(
                (approx - exact).abs() <= 0.01 * (n as f64).sqrt() + 1e-6,
                "n = {n}"
            );
        }
        let extreme = vec![-127i8; 1536];
        assert_eq!(dot_i8(&extreme, &extreme), 127 * 127 * 1536);
        let mixed: Vec<i8> = (0..1536)
            .map(|i| if i % 3 == 0 { -127 } else { 127 })
            .collect();
        assert_eq!(dot_i8(&extreme, &mixed), dot_i8_portable(&extreme, &mixed));
    }

    #[test]
    fn quantise_keeps_the_sign_and_scale() {
        let mut q = Vec::new();
        let s = quantise(&[0.5, -1.0, 0.25, 0.0], &mut q);
        assert_eq!(q, [64, -127, 32, 0]);
        assert!((s - 1.0 / 127.0).abs() < 1e-9);
        let mut z = Vec::new();
        assert_eq!(quantise(&[0.0; 3], &mut z), 0.0);
        assert_eq!(z, [0, 0, 0]);
    }
}
