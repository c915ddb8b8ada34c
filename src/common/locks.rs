//! Every advisory lock pg_tenancy takes, in one place: the key pair is
//! (`CLASS`, the lock's number), so no other code's locks collide with ours
//! and no two of ours share a number.

/// The first key of every pg_tenancy advisory lock: "tena" in ASCII.
pub const CLASS: i32 = 0x7465_6e61;

/// The second key of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Partition maintenance (transaction-level): one run at a time.
    Maintenance = 1,
    /// `seal_audit` (transaction-level): one sealer at a time.
    Seal = 2,
    /// A retention run (session-level, held across its committed batches).
    Retention = 3,
    /// A `run_jobs` run (session-level).
    Jobs = 4,
}

impl Lock {
    /// The (class, number) pair `pg_*advisory_*lock(int4, int4)` takes.
    pub fn key(self) -> (i32, i32) {
        (CLASS, self as i32)
    }
}
