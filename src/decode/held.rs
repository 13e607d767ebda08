//! The buffers whole objects are read and inflated into, counted against
//! one budget for the whole process, so that memory stays bounded however
//! many objects are decoded at once (the daemon decodes up to
//! `crawl.concurrency` of them): an object that would take the budget past
//! its limit streams instead, as bigger objects always do. Each thread keeps
//! its last buffers for the next object; kept buffers count too.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of buffers held, and how many may be.
pub(crate) struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub(crate) const fn new(limit: usize) -> Self {
        Budget {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Counts `n` more bytes, unless that would pass the limit.
    fn reserve(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// All whole-object buffers of the process: 64 MiB.
pub(crate) static WHOLE_BUDGET: Budget = Budget::new(64 * 1024 * 1024);

/// Buffers larger than this are not kept for the next object.
const KEEP_MAX: usize = 16 * 1024 * 1024;

/// A zeroed-once buffer whose length is counted against a budget.
pub(crate) struct Held {
    buf: Vec<u8>,
    budget: &'static Budget,
}

impl Held {
    pub(crate) fn new(budget: &'static Budget) -> Self {
        Held {
            buf: Vec::new(),
            budget,
        }
    }

    /// Makes the buffer at least `len` bytes long, if the budget allows.
    pub(crate) fn grow_to(&mut self, len: usize) -> bool {
        let more = len.saturating_sub(self.buf.len());
        if more == 0 {
            return true;
        }
        if !self.budget.reserve(more) {
            return false;
        }
        self.buf.reserve_exact(more);
        self.buf.resize(len, 0);
        true
    }

    /// A buffer outside the budget, for the few bytes read before the
    /// budget was found spent.
    pub(crate) fn unbudgeted() -> Self {
        static UNLIMITED: Budget = Budget::new(usize::MAX);
        Held::new(&UNLIMITED)
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.buf.len());
    }
}

/// Which of a thread's two spare buffers.
#[derive(Clone, Copy)]
pub(crate) enum Spare {
    Compressed = 0,
    Inflated = 1,
}

thread_local! {
    static SPARE: RefCell<[Option<Held>; 2]> = const { RefCell::new([None, None]) };
}

/// This thread's spare buffer of that kind, or a new empty one.
pub(crate) fn take(which: Spare) -> Held {
    SPARE
        .with(|spare| {
            spare
                .try_borrow_mut()
                .ok()
                .and_then(|mut s| s[which as usize].take())
        })
        .unwrap_or_else(|| Held::new(&WHOLE_BUDGET))
}

/// Keeps `held` for the next object on this thread, unless it is too big
/// or the thread keeps a bigger one already (the other is let go).
pub(crate) fn give_back(which: Spare, held: Held) {
    if held.len() > KEEP_MAX || !std::ptr::eq(held.budget, &WHOLE_BUDGET) {
        return;
    }
    SPARE.with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut() {
            let slot = &mut spare[which as usize];
            if slot.as_ref().is_none_or(|kept| kept.len() < held.len()) {
                *slot = Some(held);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize) -> &'static Budget {
        Box::leak(Box::new(Budget::new(limit)))
    }

    #[test]
    fn buffers_grow_within_the_budget_and_give_it_back_when_dropped() {
        let b = budget(1000);
        let mut one = Held::new(b);
        assert!(one.grow_to(600));
        assert!(one.grow_to(400), "already long enough");
        assert_eq!((one.len(), b.held()), (600, 600));
        let mut two = Held::new(b);
        assert!(!two.grow_to(500), "600 + 500 is past the limit");
        assert_eq!((two.len(), b.held()), (0, 600));
        assert!(two.grow_to(400));
        assert_eq!(b.held(), 1000);
        drop(one);
        assert_eq!(b.held(), 400);
        assert!(two.grow_to(1000));
        drop(two);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn a_thread_keeps_its_biggest_spare() {
        std::thread::spawn(|| {
            let mut small = take(Spare::Inflated);
            let mut big = take(Spare::Inflated);
            assert!(small.grow_to(10) && big.grow_to(100));
            give_back(Spare::Inflated, big);
            give_back(Spare::Inflated, small);
            assert_eq!(take(Spare::Inflated).len(), 100);
            assert_eq!(take(Spare::Inflated).len(), 0, "one spare of a kind");
        })
        .join()
        .expect("thread");
    }
}
