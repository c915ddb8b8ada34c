//! Reading a statement trigger's transition tables (every row the statement
//! inserted, deleted or updated) straight from their tuplestores: the audit
//! and row-quota triggers do their per-row work without SQL.

use pgrx::pg_sys;

/// Reads a transition table from the start, one tuple per call.
///
/// It allocates its own read pointer (other triggers on the same statement
/// read the same store) and puts pointer 0 back when dropped.
pub struct TransitionReader {
    store: *mut pg_sys::Tuplestorestate,
    slot: *mut pg_sys::TupleTableSlot,
    natts: usize,
}

impl TransitionReader {
    /// # Safety
    /// `store` must be a live transition table of rows shaped like `tupdesc`.
    pub unsafe fn new(
        store: *mut pg_sys::Tuplestorestate,
        tupdesc: pg_sys::TupleDesc,
    ) -> TransitionReader {
        // SAFETY: `store` is a live transition table (the caller's contract);
        // the slot is made for `tupdesc`, the store's row shape.
        unsafe {
            let pointer =
                pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
            pg_sys::tuplestore_select_read_pointer(store, pointer);
            pg_sys::tuplestore_rescan(store);
            TransitionReader {
                store,
                slot: pg_sys::MakeSingleTupleTableSlot(tupdesc, &pg_sys::TTSOpsMinimalTuple),
                natts: (*tupdesc).natts as usize,
            }
        }
    }

    /// The next tuple's values and nulls, valid until the next call. Our
    /// read pointer stays selected: nothing else reads the store meanwhile.
    ///
    /// # Safety
    /// Tuples are allocated in the current memory context.
    pub unsafe fn next(&mut self) -> Option<(&[pg_sys::Datum], &[bool])> {
        // SAFETY: as for `next_prefix`, with every column.
        unsafe { self.next_prefix(self.natts) }
    }

    /// Like [`next`](Self::next), but deforms only the first `count` columns
    /// (a trigger that needs one column pays for no more).
    ///
    /// # Safety
    /// As for `next`; `count` is at most the number of columns.
    pub unsafe fn next_prefix(&mut self, count: usize) -> Option<(&[pg_sys::Datum], &[bool])> {
        // SAFETY: `store` and `slot` are live (made in `new`); `count` is at most
        // the number of columns (the caller's contract).
        unsafe {
            if !pg_sys::tuplestore_gettupleslot(self.store, true, false, self.slot) {
                return None;
            }
            if ((*self.slot).tts_nvalid as usize) < count {
                pg_sys::slot_getsomeattrs_int(self.slot, count as i32);
            }
            Some((
                std::slice::from_raw_parts((*self.slot).tts_values, count),
                std::slice::from_raw_parts((*self.slot).tts_isnull, count),
            ))
        }
    }

    /// How many rows the table holds.
    pub fn count(&self) -> usize {
        // SAFETY: the store outlives the reader (see `new`).
        unsafe { pg_sys::tuplestore_tuple_count(self.store) as usize }
    }
}

impl Drop for TransitionReader {
    fn drop(&mut self) {
        // SAFETY: the slot was made for this reader; read pointer 0 is the
        // store's default, restored for whoever reads next.
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::tuplestore_select_read_pointer(self.store, 0);
        }
    }
}
