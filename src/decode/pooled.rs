//! A buffered reader whose buffer comes from, and goes back to, a pool kept
//! by each thread. `std::io::BufReader` allocates its buffer for every object
//! and zeroes it on first use (for readers without `read_buf`, such as the
//! gzip decoder): 256 KiB of `memset` for every object, however small.

use std::cell::RefCell;
use std::io::{self, BufRead, Read};

thread_local! {
    /// Buffers of readers that have been dropped, for the next ones.
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Spare buffers a thread keeps (a reader uses two: compressed and not).
const POOL_MAX: usize = 2;

/// `BufRead` over `inner` with a buffer of `capacity` bytes from the pool.
pub(crate) struct PooledBufReader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
}

impl<R: Read> PooledBufReader<R> {
    pub(crate) fn with_capacity(capacity: usize, inner: R) -> Self {
        let mut buf = POOL
            .with(|pool| {
                let mut pool = pool.try_borrow_mut().ok()?;
                let at = pool.iter().position(|b| b.len() == capacity)?;
                Some(pool.swap_remove(at))
            })
            .unwrap_or_default();
        // Zeroed once, when the buffer is first made.
        buf.resize(capacity, 0);
        PooledBufReader {
            inner,
            buf,
            pos: 0,
            filled: 0,
        }
    }
}

impl<R> Drop for PooledBufReader<R> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        POOL.with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut()
                && pool.len() < POOL_MAX
            {
                pool.push(buf);
            }
        });
    }
}

impl<R: Read> Read for PooledBufReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // A read as large as the buffer skips it, as `BufReader` does.
        if self.pos == self.filled && out.len() >= self.buf.len() {
            return self.inner.read(out);
        }
        read_through_buffer(self, out)
    }
}

/// `Read::read` for a `BufRead`: from its buffer, filled when empty.
pub(crate) fn read_through_buffer(reader: &mut impl BufRead, out: &mut [u8]) -> io::Result<usize> {
    let n = {
        let available = reader.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        n
    };
    reader.consume(n);
    Ok(n)
}

impl<R: Read> BufRead for PooledBufReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = self.inner.read(&mut self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.filled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_everything_in_order_through_a_reused_buffer() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..3 {
            let mut reader = PooledBufReader::with_capacity(64, &data[..]);
            let mut out = Vec::new();
            // Mixed small reads, buffered lines of the buffer, and a big read.
            let mut small = [0u8; 7];
            let n = reader.read(&mut small).expect("read");
            out.extend_from_slice(&small[..n]);
            let chunk = reader.fill_buf().expect("fill").to_vec();
            reader.consume(chunk.len().min(5));
            out.extend_from_slice(&chunk[..chunk.len().min(5)]);
            reader.read_to_end(&mut out).expect("read to end");
            assert_eq!(out, data);
        }
        POOL.with(|pool| assert!(!pool.borrow().is_empty(), "the buffer went back"));
    }
}
