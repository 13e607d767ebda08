//! Gunzip of a whole object in one call, with libdeflate: about twice as
//! fast as a streaming inflate, for the objects small enough to hold (nearly
//! all CloudTrail objects, a few hundred KB to a few MB). Anything it cannot
//! do in one go (an object too big, one that would take the process's
//! whole-object buffers past their budget, or gzip libdeflate finds fault
//! with) is left to the streaming decoder, which holds only its buffers,
//! says where a fault lies and yields the records before it.

use std::io::{self, BufRead, Read};

use super::held::{Held, Spare, give_back, take};

/// Compressed objects up to this size are read whole.
pub(crate) const WHOLE_MAX_COMPRESSED: usize = 8 * 1024 * 1024;
/// Decompressed objects up to this size are inflated whole.
pub(crate) const WHOLE_MAX_DECOMPRESSED: usize = 32 * 1024 * 1024;
/// The first size of a buffer that grows while the object is read.
const FIRST_READ: usize = 64 * 1024;

/// The start of an object, read to see whether it is small enough to hold.
pub(crate) enum Head {
    /// All of it.
    Whole(Compressed),
    /// The first bytes of one that is bigger (or that the budget cannot
    /// hold), or of one whose read failed (with the error, to be met again
    /// where the stream reaches it).
    Partial(Bytes, Option<io::Error>),
}

/// Bytes read into a counted buffer, to be read again by a stream.
pub(crate) struct Bytes {
    held: Held,
    len: usize,
}

impl Bytes {
    /// A few bytes in a buffer of their own, outside the budget.
    pub(crate) fn copied(bytes: &[u8]) -> Bytes {
        let mut held = Held::unbudgeted();
        held.grow_to(bytes.len());
        held.bytes_mut().copy_from_slice(bytes);
        Bytes {
            held,
            len: bytes.len(),
        }
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.held.bytes()[..self.len]
    }
}

/// Reads `input` to its end into this thread's buffer (after `prefix`,
/// read already) if it holds at most `max` bytes in all and the budget
/// allows.
pub(crate) fn read_whole(input: impl Read, prefix: &[u8], max: usize) -> Head {
    read_whole_into(take(Spare::Compressed), input, prefix, max)
}

fn read_whole_into(mut held: Held, mut input: impl Read, prefix: &[u8], max: usize) -> Head {
    if !held.grow_to(prefix.len().max(FIRST_READ).min(max + 1)) || held.len() < prefix.len() {
        // The budget is spent: stream, the prefix in a buffer of its own.
        return Head::Partial(Bytes::copied(prefix), None);
    }
    held.bytes_mut()[..prefix.len()].copy_from_slice(prefix);
    let mut len = prefix.len();
    loop {
        // One byte more than allowed says whether there is more.
        if len > max {
            return Head::Partial(Bytes { held, len }, None);
        }
        if len == held.len() && !held.grow_to((len * 2).clamp(FIRST_READ, max + 1)) {
            return Head::Partial(Bytes { held, len }, None);
        }
        let room = held.len().min(max + 1);
        match input.read(&mut held.bytes_mut()[len..room]) {
            Ok(0) => return Head::Whole(Compressed(Some(Bytes { held, len }))),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Head::Partial(Bytes { held, len }, Some(e)),
        }
    }
}

/// A whole compressed object; its buffer goes back to the thread's spares.
pub(crate) struct Compressed(Option<Bytes>);

impl Compressed {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |b| b.as_ref())
    }

    /// The bytes, for a streaming read instead (not kept as a spare).
    pub(crate) fn into_bytes(mut self) -> Option<Bytes> {
        self.0.take()
    }
}

impl Drop for Compressed {
    fn drop(&mut self) {
        if let Some(bytes) = self.0.take() {
            give_back(Spare::Compressed, bytes.held);
        }
    }
}

/// Inflates all the gzip members of `gz` into at most `limit` bytes; `None`
/// when they do not fit (or the budget cannot hold them), or libdeflate
/// finds fault with them (the streaming decoder then says what the fault
/// is and where).
pub(crate) fn inflate(gz: &[u8], limit: usize) -> Option<Inflated> {
    inflate_into(take(Spare::Inflated), gz, limit)
}

fn inflate_into(held: Held, gz: &[u8], limit: usize) -> Option<Inflated> {
    if gz.len() < 18 {
        give_back(Spare::Inflated, held);
        return None;
    }
    let mut out = Inflated {
        held,
        len: 0,
        pos: 0,
    };
    // The last member's size (mod 4 GiB) from its trailer: exact for the
    // usual single member, a first guess otherwise.
    let trailer: [u8; 4] = gz[gz.len() - 4..].try_into().ok()?;
    let hint = (u32::from_le_bytes(trailer) as usize).max(gz.len() * 4);
    // The output may use this much of the buffer (which may be bigger,
    // from an earlier object).
    let mut room = hint.min(limit);
    if !out.held.grow_to(room) {
        return None;
    }
    let decompressor = Decompressor::new()?;
    let mut rest = gz;
    while !rest.is_empty() {
        let (used, written) = loop {
            let space = out.held.bytes_mut().get_mut(out.len..room)?;
            match decompressor.gzip_member(rest, space) {
                Member::Done { used, written } => break (used, written),
                Member::Bad => return None,
                Member::NoRoom if room >= limit => return None,
                Member::NoRoom => {
                    room = room.saturating_mul(2).min(limit);
                    if !out.held.grow_to(room) {
                        return None;
                    }
                }
            }
        };
        out.len += written;
        rest = rest.get(used..)?;
        if used == 0 {
            return None;
        }
    }
    Some(out)
}

/// A whole decompressed object, read as a `BufRead`; its buffer goes back
/// to the thread's spares.
pub(crate) struct Inflated {
    held: Held,
    len: usize,
    pos: usize,
}

impl Inflated {
    /// The decompressed length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Read for Inflated {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        super::pooled::read_through_buffer(self, out)
    }
}

impl BufRead for Inflated {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self
            .held
            .bytes()
            .get(self.pos..self.len)
            .unwrap_or_default())
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.len);
    }
}

impl Drop for Inflated {
    fn drop(&mut self) {
        let held = std::mem::replace(&mut self.held, Held::unbudgeted());
        give_back(Spare::Inflated, held);
    }
}

/// What one gzip member came to.
enum Member {
    /// It took `used` bytes of input and gave `written` bytes.
    Done { used: usize, written: usize },
    /// The output has no room for it.
    NoRoom,
    /// It is not valid gzip (or is cut short).
    Bad,
}

/// A libdeflate decompressor, freed on drop.
struct Decompressor(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: no preconditions; a null result (out of memory) is handled.
        let raw = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        std::ptr::NonNull::new(raw).map(Decompressor)
    }

    /// Inflates the gzip member at the start of `input` into `out`.
    fn gzip_member(&self, input: &[u8], out: &mut [u8]) -> Member {
        let mut used = 0usize;
        let mut written = 0usize;
        // SAFETY: the pointers and lengths come from live slices; libdeflate
        // reads at most `input.len()` bytes and writes at most `out.len()`,
        // and reports both counts through the two pointers.
        let result = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used,
                &mut written,
            )
        };
        match result {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS
                if used <= input.len() && written <= out.len() =>
            {
                Member::Done { used, written }
            }
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Member::NoRoom,
            _ => Member::Bad,
        }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip")
    }

    fn all(mut r: impl Read) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).expect("read");
        v
    }

    #[test]
    fn inflates_every_member_and_grows_past_a_wrong_hint() {
        let one: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8 + b'a').collect();
        let two = b"{\"Records\":[]}".to_vec();
        // The last member's trailer says 14 bytes: far too few for the first.
        let mut gz = gzip(&one);
        gz.extend(gzip(&two));
        let out = inflate(&gz, 1 << 20).expect("inflates");
        assert_eq!(all(out), [one.clone(), two].concat());
        // Not enough room at the limit: left to the streaming decoder.
        assert!(inflate(&gz, 1000).is_none());
    }

    #[test]
    fn finds_fault_with_corrupt_or_trailing_bytes() {
        let data = b"{\"Records\":[{\"eventName\":\"StopLogging\"}]}".repeat(100);
        let gz = gzip(&data);
        assert_eq!(all(inflate(&gz, 1 << 20).expect("inflates")), data);
        let mut flipped = gz.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x55;
        assert!(inflate(&flipped, 1 << 20).is_none(), "a flipped byte");
        let mut trailing = gz.clone();
        trailing.extend_from_slice(b"\0\0\0\0");
        assert!(
            inflate(&trailing, 1 << 20).is_none(),
            "bytes after the member"
        );
        assert!(inflate(&gz[..gz.len() - 1], 1 << 20).is_none(), "cut short");
    }

    #[test]
    fn reads_whole_only_up_to_the_limit() {
        let data = [7u8; 100];
        let Head::Whole(whole) = read_whole(&data[2..], &data[..2], 100) else {
            panic!("100 bytes fit in 100");
        };
        assert_eq!(whole.bytes(), &data[..]);
        let Head::Partial(first, None) = read_whole(&data[2..], &data[..2], 99) else {
            panic!("100 bytes do not fit in 99");
        };
        assert_eq!(first.as_ref(), &data[..], "the bytes read come back");
        let failing = (&data[2..50]).chain(Failing);
        let Head::Partial(first, Some(e)) = read_whole(failing, &data[..2], 100) else {
            panic!("a failed read");
        };
        assert_eq!(
            (first.as_ref(), e.kind()),
            (&data[..50], io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn what_the_budget_cannot_hold_streams() {
        use super::super::held::Budget;
        let budget: &'static Budget = Box::leak(Box::new(Budget::new(140_000)));
        let data: Vec<u8> = (0..90_000u32).map(|i| (i % 251) as u8).collect();
        let read = |max| read_whole_into(Held::new(budget), &data[2..], &data[..2], max);
        // The buffer grows 64 KiB, then 128 KiB: within 140,000.
        let Head::Whole(whole) = read(200_000) else {
            panic!("fits the budget");
        };
        assert_eq!(whole.bytes(), &data[..]);
        assert_eq!(budget.held(), 131_072);
        drop(whole.into_bytes());
        assert_eq!(budget.held(), 0, "given back");
        // With 50,000 held elsewhere the second step does not fit: the
        // bytes read so far come back for a stream, none lost.
        let mut other = Held::new(budget);
        assert!(other.grow_to(50_000));
        let Head::Partial(first, None) = read(200_000) else {
            panic!("past the budget");
        };
        assert_eq!(first.as_ref(), &data[..65_536]);
        drop(first);
        // Spent entirely: the prefix alone, outside the budget.
        assert!(other.grow_to(140_000));
        let Head::Partial(first, None) = read(200_000) else {
            panic!("no room at all");
        };
        assert_eq!(first.as_ref(), &data[..2]);
        assert_eq!(budget.held(), 140_000, "the prefix is not counted");
        // Inflating 90,000 bytes: room for them, then none.
        let gz = gzip(&data);
        drop(other);
        let inflated = inflate_into(Held::new(budget), &gz, 1 << 20).expect("room");
        assert_eq!(all(inflated), data);
        let mut other = Held::new(budget);
        assert!(other.grow_to(100_000));
        assert!(inflate_into(Held::new(budget), &gz, 1 << 20).is_none());
        drop(other);
        assert_eq!(budget.held(), 0);
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
    }
}
