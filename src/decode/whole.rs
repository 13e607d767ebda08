//! Gunzip of a whole object in one call, with libdeflate: about twice as
//! fast as a streaming inflate, for the objects small enough to hold (nearly
//! all CloudTrail objects, a few hundred KB to a few MB). Anything it cannot
//! do in one go (an object too big, or gzip it finds fault with) is left to
//! the streaming decoder, which says where a fault lies and yields the
//! records before it.

use std::cell::RefCell;
use std::io::{self, BufRead, Read};

/// Compressed objects up to this size are read whole.
pub(crate) const WHOLE_MAX_COMPRESSED: usize = 8 * 1024 * 1024;
/// Decompressed objects up to this size are inflated whole.
pub(crate) const WHOLE_MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;
/// Buffers larger than this are not kept for the next object.
const KEEP_MAX: usize = 16 * 1024 * 1024;

thread_local! {
    /// A thread's spare compressed and decompressed buffers.
    static SPARE: RefCell<[Vec<u8>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

const COMPRESSED: usize = 0;
const INFLATED: usize = 1;

/// A buffer from this thread's spares (empty when there is none).
pub(crate) fn take_buffer(which: usize) -> Vec<u8> {
    SPARE
        .with(|spare| {
            spare
                .try_borrow_mut()
                .map(|mut s| std::mem::take(&mut s[which]))
        })
        .unwrap_or_default()
}

/// Keeps `buf` for the next object on this thread, unless it is too big.
fn give_back(which: usize, buf: Vec<u8>) {
    if buf.capacity() > KEEP_MAX {
        return;
    }
    SPARE.with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut()
            && spare[which].capacity() < buf.capacity()
        {
            spare[which] = buf;
        }
    });
}

/// The start of an object, read to see whether it is small enough to hold.
pub(crate) enum Head {
    /// All of it.
    Whole(Compressed),
    /// The first bytes of one that is bigger, or of one whose read failed
    /// (with the error, to be met again where the stream reaches it).
    Partial(Vec<u8>, Option<io::Error>),
}

/// Reads `input` to its end into a buffer (after `prefix`, read already)
/// if it holds at most `max` bytes in all.
pub(crate) fn read_whole(mut input: impl Read, prefix: &[u8], max: usize) -> Head {
    let mut buf = take_buffer(COMPRESSED);
    buf.clear();
    buf.extend_from_slice(prefix);
    // One byte more than allowed says whether there is more.
    let limit = (max + 1).saturating_sub(buf.len()) as u64;
    // On an error the bytes read before it are kept in `buf`.
    if let Err(e) = (&mut input).take(limit).read_to_end(&mut buf) {
        return Head::Partial(buf, Some(e));
    }
    if buf.len() > max {
        return Head::Partial(buf, None);
    }
    Head::Whole(Compressed(buf))
}

/// A whole compressed object; its buffer goes back to the thread's spares.
pub(crate) struct Compressed(Vec<u8>);

impl Compressed {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The buffer, for a streaming read instead (not kept as a spare).
    pub(crate) fn into_inner(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Compressed {
    fn drop(&mut self) {
        give_back(COMPRESSED, std::mem::take(&mut self.0));
    }
}

/// Inflates all the gzip members of `gz` into at most `limit` bytes; `None`
/// when they do not fit, or libdeflate finds fault with them (the streaming
/// decoder then says what the fault is and where).
pub(crate) fn inflate(gz: &[u8], limit: usize) -> Option<Inflated> {
    if gz.len() < 18 {
        return None;
    }
    let mut out = Inflated {
        buf: take_buffer(INFLATED),
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
    grow(&mut out.buf, room);
    let decompressor = Decompressor::new()?;
    let mut rest = gz;
    while !rest.is_empty() {
        let (used, written) = loop {
            let space = out.buf.get_mut(out.len..room)?;
            match decompressor.gzip_member(rest, space) {
                Member::Done { used, written } => break (used, written),
                Member::Bad => return None,
                Member::NoRoom if room >= limit => return None,
                Member::NoRoom => {
                    room = room.saturating_mul(2).min(limit);
                    grow(&mut out.buf, room);
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

/// Makes `buf` `len` bytes long (zeroed once, when it first grows).
fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// A whole decompressed object, read as a `BufRead`; its buffer goes back
/// to the thread's spares.
pub(crate) struct Inflated {
    buf: Vec<u8>,
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
        Ok(self.buf.get(self.pos..self.len).unwrap_or_default())
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.len);
    }
}

impl Drop for Inflated {
    fn drop(&mut self) {
        give_back(INFLATED, std::mem::take(&mut self.buf));
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
        assert_eq!(first.len(), 100, "the bytes read come back");
        let failing = (&data[2..50]).chain(Failing);
        let Head::Partial(first, Some(e)) = read_whole(failing, &data[..2], 100) else {
            panic!("a failed read");
        };
        assert_eq!(
            (first.len(), e.kind()),
            (50, io::ErrorKind::ConnectionReset)
        );
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
    }
}
