//! Finding the bytes that end a run of JSON string content: `"`, `\` and,
//! when checking, the control characters that must be escaped. Strings in
//! CloudTrail records are short, so eight bytes at a time in a register beat
//! a vectorised search that has to be set up for every string.

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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Every byte value in every lane position.
        for v in 0..=255u8 {
            for lane in 0..8 {
                let mut s = [b'a'; 12];
                s[lane] = v;
                for controls in [false, true] {
                    assert_eq!(
                        find_string_end(&s, 0, controls),
                        naive(&s, 0, controls),
                        "{v} at {lane}"
                    );
                }
            }
        }
    }
}
