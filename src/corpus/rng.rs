//! Ids for generated records: a small seeded generator whose output never
//! changes with a dependency's version (the times are `event::time`'s).

/// SplitMix64: deterministic for a seed, on every platform and forever.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// A generator for one item of a stream, independent of every other item.
    pub fn for_item(seed: u64, stream: u64, item: u64) -> Self {
        let mut s = SplitMix(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        s.0 ^= s.next_u64() ^ item;
        SplitMix(s.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A version-4 UUID, as CloudTrail writes event and request ids.
    pub fn uuid(&mut self, out: &mut String) {
        let (a, b) = (self.next_u64(), self.next_u64());
        let a = (a & !0xF000) | 0x4000;
        let b = (b & !(0xC << 60)) | (0x8 << 60);
        let hex = format!("{a:016x}{b:016x}");
        out.clear();
        out.push_str(&hex[0..8]);
        out.push('-');
        out.push_str(&hex[8..12]);
        out.push('-');
        out.push_str(&hex[12..16]);
        out.push('-');
        out.push_str(&hex[16..20]);
        out.push('-');
        out.push_str(&hex[20..32]);
    }

    /// `n` characters from CloudTrail's object-name alphabet.
    pub fn alnum(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

pub use crate::event::time::{civil, days_from_civil, parse_rfc3339, rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a = SplitMix::for_item(1, 2, 3).next_u64();
        assert_eq!(a, SplitMix::for_item(1, 2, 3).next_u64());
        assert_ne!(a, SplitMix::for_item(1, 2, 4).next_u64());
        assert_ne!(a, SplitMix::for_item(2, 2, 3).next_u64());
        let mut id = String::new();
        SplitMix::new(7).uuid(&mut id);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}
