//! An event's id held without a heap allocation when it is short, as AWS's
//! eventIDs are (36-character UUIDs): a burst's sample holds a hundred of
//! them, and a match may copy one in, and push one out, of its burst.

use std::cmp::Ordering;
use std::fmt;

/// The longest id held inline.
const INLINE: usize = 46;

#[derive(Clone)]
pub(crate) enum InlineId {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl InlineId {
    pub(crate) fn new(id: &str) -> InlineId {
        match id.len() {
            len @ 0..=INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..len].copy_from_slice(id.as_bytes());
                InlineId::Inline {
                    len: len as u8,
                    bytes,
                }
            }
            _ => InlineId::Heap(id.into()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // SAFETY: `bytes[..len]` is a whole `&str` copied by `new`.
            InlineId::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..usize::from(*len)])
            },
            InlineId::Heap(id) => id,
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            InlineId::Heap(id) => id.into_string(),
            inline => inline.as_str().to_owned(),
        }
    }
}

impl PartialEq for InlineId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for InlineId {}

impl PartialOrd for InlineId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InlineId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for InlineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_short_and_long_read_back_and_order_as_their_text() {
        let texts = [
            "",
            "e1",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            &"x".repeat(INLINE),
            &"y".repeat(INLINE + 1),
            "é, not ASCII",
        ];
        let ids: Vec<InlineId> = texts.iter().map(|t| InlineId::new(t)).collect();
        assert!(matches!(ids[3], InlineId::Inline { .. }));
        assert!(matches!(ids[4], InlineId::Heap(_)));
        for (a, ta) in ids.iter().zip(&texts) {
            assert_eq!(a.as_str(), *ta);
            assert_eq!(a.clone().into_string(), *ta);
            for (b, tb) in ids.iter().zip(&texts) {
                assert_eq!(a.cmp(b), ta.cmp(tb), "{ta:?} vs {tb:?}");
                assert_eq!(a == b, ta == tb);
            }
        }
    }
}
