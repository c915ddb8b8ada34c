//! The token buckets in shared memory: one table for the whole server,
//! behind one lightweight lock, taken exclusively for the few arithmetic
//! operations of a call (no I/O, no wait on another transaction, no WAL).
//! Only where pg_tenancy is in `shared_preload_libraries`: shared memory is
//! set aside when the server starts. Lost at restart (buckets start full).

use super::bucket::{self, Decision, Rate, Slot, SLOTS};
use pgrx::lwlock::PgLwLock;
use pgrx::pg_shmem_init;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::sync::atomic::{AtomicBool, Ordering};

/// A fixed array of plain values, as shared memory holds it: its size is
/// set when the server starts and never changes.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Table<T: Copy + Default, const N: usize> {
    pub entries: [T; N],
}

impl<T: Copy + Default, const N: usize> Default for Table<T, N> {
    fn default() -> Self {
        Table {
            entries: [T::default(); N],
        }
    }
}

// SAFETY: the entries are plain data (the callers' types hold no pointers),
// the same in every process.
unsafe impl<T: Copy + Default, const N: usize> PGRXSharedMemory for Table<T, N> {}

type Buckets = Table<Slot, SLOTS>;

// SAFETY: the only lock of that name; pg_tenancy names its locks after itself.
static BUCKETS: PgLwLock<Buckets> = unsafe { PgLwLock::new(c"pg_tenancy_throttle") };

/// Set in the postmaster when it loaded us at startup; backends inherit it.
static IN_SHARED_MEMORY: AtomicBool = AtomicBool::new(false);

/// Sets the table aside; called from `_PG_init`, which does something only
/// while the server loads `shared_preload_libraries`.
#[allow(unexpected_cfgs)] // pg_shmem_init! tests features pg13 and pg14, which we do not declare
pub fn init() {
    // SAFETY: reads a flag the postmaster sets while it loads libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(BUCKETS);
        IN_SHARED_MEMORY.store(true, Ordering::Relaxed);
    }
}

/// Whether the buckets exist (pg_tenancy was preloaded).
pub fn available() -> bool {
    IN_SHARED_MEMORY.load(Ordering::Relaxed)
}

/// [`bucket::take`] on the shared table, now. Only when [`available`].
pub fn take(tenant: &[u8; 16], resource: &str, rate: Rate, cost: f64) -> Decision {
    let resource = bucket::resource_hash(resource);
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let mut buckets = BUCKETS.exclusive();
    bucket::take(&mut buckets.entries, tenant, resource, rate, cost, now)
}

/// Empties the table: every bucket starts full again.
pub fn clear() {
    if available() {
        bucket::clear(&mut BUCKETS.exclusive().entries);
    }
}
