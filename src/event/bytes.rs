//! Finding the bytes that end a run of JSON string content: `"`, `\` and,
//! when checking, the control characters that must be escaped. Strings in
//! CloudTrail records are short: sixteen bytes at a time with SSE2 (on every
//! x86_64), else eight at a time in a register, beat a search that has to be
//! set up for every string.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bytes of `w` equal to zero get their high bit set; a false positive can
/// appear only above a true one, so the lowest flagged byte is always right.
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// Bytes of `w` below `n` (n ≤ 128), with the same guarantee.
#[inline(always)]
fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// Index of the first `"`, `\` or (with `controls`) byte below 0x20 at or
/// after `from`; `b.len()` when there is none.
#[inline]
pub fn find_string_end(b: &[u8], from: usize, controls: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    let from = match sse2::find(b, from, controls) {
        Ok(found) => return found,
        Err(tail) => tail,
    };
    find_swar(b, from, controls)
}

/// Sixteen bytes at a time: most strings end within the first sixteen, so
/// the loop is usually left on its first pass, a branch that predicts well.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// `Ok(index)` of the first byte sought, or `Err(i)` when fewer than
    /// sixteen bytes from `i` are left to look at.
    #[inline]
    pub fn find(b: &[u8], from: usize, controls: bool) -> Result<usize, usize> {
        let mut i = from;
        // SAFETY: SSE2 is part of every x86_64 CPU, and each load reads the
        // sixteen bytes `b[i..i + 16]`, which the loop condition keeps in
        // bounds (an unaligned load is allowed).
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let below_space = _mm_set1_epi8(0x1f);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let mut hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                if controls {
                    // v <= 0x1f exactly where min(v, 0x1f) == v (unsigned).
                    hits = _mm_or_si128(hits, _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v));
                }
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    return Ok(i + mask.trailing_zeros() as usize);
                }
                i += 16;
            }
        }
        Err(i)
    }
}

/// Eight bytes at a time in a register, then byte by byte.
#[inline]
fn find_swar(b: &[u8], from: usize, controls: bool) -> usize {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let mut hits =
            zero_bytes(w ^ (ONES * u64::from(b'"'))) | zero_bytes(w ^ (ONES * u64::from(b'\\')));
        if controls {
            hits |= bytes_below(w, 0x20);
        }
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\\' || (controls && c < 0x20) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Whether `a` and `b` are the same bytes: names and keys are short, and a
/// call to `memcmp` for each costs more than comparing them in registers.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        // Two overlapping words cover the whole of each.
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => word8(a, n - 8) == word8(b, n - 8) && a == b,
    }
}

#[inline(always)]
fn word4(s: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_le_bytes(w)
}

#[inline(always)]
fn word8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &base[..n + 1]));
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "{n} bytes, differing at {at}");
            }
        }
    }

    fn naive(b: &[u8], from: usize, controls: bool) -> usize {
        (from..b.len())
            .find(|&i| b[i] == b'"' || b[i] == b'\\' || (controls && b[i] < 0x20))
            .unwrap_or(b.len())
    }

    #[test]
    fn agrees_with_a_byte_loop() {
        let samples: [&[u8]; 6] = [
            b"abcdefghijklmnop\"",
            b"\x01\x80\xff\"",
            b"0123456789abcdef0123\\x\"",
            b"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\t\"",
            b"",
            b"no end at all, longer than eight",
        ];
        for s in samples {
            for from in 0..s.len() {
                for controls in [false, true] {
                    assert_eq!(
                        find_string_end(s, from, controls),
                        naive(s, from, controls),
                        "{s:?} {from}"
                    );
                }
            }
        }
        // Every byte value in every lane position, of both widths, and in
        // the tails after them.
        for v in 0..=255u8 {
            for lane in 0..40 {
                let mut s = [b'a'; 45];
                s[lane] = v;
                for controls in [false, true] {
                    for from in [0, 1, 7, 20] {
                        assert_eq!(
                            find_string_end(&s, from, controls),
                            naive(&s, from, controls),
                            "{v} at {lane} from {from}"
                        );
                        assert_eq!(
                            find_swar(&s, from, controls),
                            naive(&s, from, controls),
                            "swar: {v} at {lane} from {from}"
                        );
                    }
                }
            }
        }
    }
}
