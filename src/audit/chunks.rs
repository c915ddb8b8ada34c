//! The audit trigger's value allocator.

use pgrx::pg_sys;

/// Bump allocation of audit values in the current batch's memory: one palloc
/// per chunk instead of one per value. Chunks start small (a one-row
/// statement needs well under a kilobyte, and a large palloc is a malloc of
/// its own) and double up to 64 kB. Reset when the batch memory is.
#[derive(Default)]
pub struct Chunks {
    next: usize,
    left: usize,
    /// Size of the last chunk taken.
    size: usize,
}

impl Chunks {
    const FIRST: usize = 2 * 1024;
    const MAX: usize = 64 * 1024;

    /// `size` bytes, 8-byte aligned, valid until [`Chunks::reset`].
    ///
    /// # Safety
    /// The current memory context must be the batch memory.
    pub unsafe fn alloc(&mut self, size: usize) -> *mut u8 {
        let size = (size + 7) & !7;
        if size > self.left {
            self.size = (self.size * 2).clamp(Self::FIRST, Self::MAX);
            let chunk = size.max(self.size);
            // SAFETY: palloc raises an ERROR rather than return null.
            self.next = unsafe { pg_sys::palloc(chunk) } as usize;
            self.left = chunk;
        }
        let at = self.next;
        self.next += size;
        self.left -= size;
        at as *mut u8
    }

    /// Forgets the current chunk (its memory was freed with the batch).
    pub fn reset(&mut self) {
        self.left = 0;
    }
}
