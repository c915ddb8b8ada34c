//! The transaction's own view of the usage counters it has locked.
//!
//! Updating one row many times in one transaction is quadratic in
//! PostgreSQL: every UPDATE walks the row's growing chain of versions. So a
//! counter is written at most twice per transaction: once when it is first
//! touched (the UPDATE that also locks it) and once at commit with the final
//! figure. In between, every `consume` and `release` of that counter works
//! here, in memory, which is exact because the row lock is ours until the
//! transaction ends: no other session can change the counter meanwhile.
//!
//! Savepoints: a change is tagged with the subtransaction that made it. When a
//! subtransaction aborts, its changes are undone here, and counters it locked
//! are forgotten (PostgreSQL released the lock and undid its writes); when it
//! commits, its changes belong to its parent. Pure data, no server calls: the
//! caller passes subtransaction ids, so this is unit-tested without a server.

use std::collections::HashMap;

/// A subtransaction id (PostgreSQL's SubTransactionId; 1 is the top level).
/// Ids grow within a transaction, so a live id greater than an aborting one
/// always belongs to one of its descendants.
pub type SubId = u32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub tenant: [u8; 16],
    pub resource: String,
}

/// A counter's value for this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value {
    /// Period start as stored (PostgreSQL timestamptz microseconds).
    pub period_start: i64,
    pub used: i64,
    /// Whether `used`/`period_start` differ from what this transaction last wrote.
    pub dirty: bool,
}

#[derive(Debug)]
struct Held {
    value: Value,
    /// The subtransaction whose lock we hold.
    locked_in: SubId,
    /// Values before changes made by (still live) subtransactions, oldest first.
    undo: Vec<(SubId, Value)>,
}

#[derive(Debug, Default)]
pub struct Ledger {
    held: HashMap<Key, Held>,
}

impl Ledger {
    /// The counter's value, if this transaction holds its lock.
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.held.get(key).map(|h| h.value)
    }

    /// Records a counter just locked (and read or written) by subtransaction `sub`.
    pub fn lock(&mut self, key: Key, value: Value, sub: SubId) {
        self.held.insert(
            key,
            Held {
                value,
                locked_in: sub,
                undo: Vec::new(),
            },
        );
    }

    /// Changes a held counter in subtransaction `sub`, keeping what an abort of
    /// `sub` must restore. Returns false when the counter is not held.
    pub fn set(&mut self, key: &Key, value: Value, sub: SubId) -> bool {
        let Some(held) = self.held.get_mut(key) else {
            return false;
        };
        if held.locked_in < sub && held.undo.last().is_none_or(|(tag, _)| *tag < sub) {
            held.undo.push((sub, held.value));
        }
        held.value = value;
        true
    }

    /// Subtransaction `sub` aborted.
    pub fn abort_sub(&mut self, sub: SubId) {
        self.held.retain(|_, held| {
            if held.locked_in >= sub {
                return false;
            }
            if let Some(first) = held.undo.iter().position(|(tag, _)| *tag >= sub) {
                held.value = held.undo[first].1;
                held.undo.truncate(first);
            }
            true
        });
    }

    /// Subtransaction `sub` committed into `parent`.
    pub fn commit_sub(&mut self, sub: SubId, parent: SubId) {
        for held in self.held.values_mut() {
            if held.locked_in >= sub {
                held.locked_in = parent;
                // Locked inside `sub`: its whole history now belongs to the
                // parent's lock, so there is nothing left to undo separately.
                held.undo.clear();
                continue;
            }
            for entry in held.undo.iter_mut() {
                if entry.0 >= sub {
                    entry.0 = parent;
                }
            }
            // Two records for the parent now: the older one is what it must restore.
            held.undo.dedup_by(|later, earlier| later.0 == earlier.0);
            // A record for the lock holder itself restores nothing it could lose.
            let locked_in = held.locked_in;
            held.undo.retain(|(tag, _)| *tag > locked_in);
        }
    }

    /// The counters whose final figure must still be written, and forgets
    /// their dirtiness (the caller writes them now).
    pub fn take_dirty(&mut self) -> Vec<(Key, Value)> {
        let mut dirty = Vec::new();
        for (key, held) in self.held.iter_mut() {
            if held.value.dirty {
                held.value.dirty = false;
                dirty.push((key.clone(), held.value));
            }
        }
        // A stable order, so two committing sessions write rows in the same order.
        dirty.sort_by(|a, b| (a.0.tenant, &a.0.resource).cmp(&(b.0.tenant, &b.0.resource)));
        dirty
    }

    /// The transaction ended: every lock is gone.
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key {
            tenant: [n; 16],
            resource: "api_calls".into(),
        }
    }

    fn value(used: i64, dirty: bool) -> Value {
        Value {
            period_start: 0,
            used,
            dirty,
        }
    }

    #[test]
    fn changes_at_the_top_level_stay() {
        let mut ledger = Ledger::default();
        ledger.lock(key(1), value(5, false), 1);
        assert!(ledger.set(&key(1), value(6, true), 1));
        assert!(!ledger.set(&key(2), value(1, true), 1));
        assert_eq!(ledger.get(&key(1)), Some(value(6, true)));
        assert_eq!(ledger.take_dirty(), vec![(key(1), value(6, false))]);
        assert!(ledger.take_dirty().is_empty());
    }

    #[test]
    fn an_aborted_savepoint_undoes_its_changes() {
        let mut ledger = Ledger::default();
        ledger.lock(key(1), value(5, false), 1);
        ledger.set(&key(1), value(6, true), 1);
        // SAVEPOINT a (sub 2): two changes.
        ledger.set(&key(1), value(7, true), 2);
        ledger.set(&key(1), value(8, true), 2);
        ledger.abort_sub(2);
        assert_eq!(ledger.get(&key(1)), Some(value(6, true)));
    }

    #[test]
    fn a_counter_locked_in_an_aborted_savepoint_is_forgotten() {
        let mut ledger = Ledger::default();
        ledger.lock(key(1), value(5, false), 1);
        ledger.lock(key(2), value(1, false), 2);
        ledger.set(&key(2), value(2, true), 2);
        ledger.abort_sub(2);
        assert_eq!(ledger.get(&key(2)), None);
        assert_eq!(ledger.get(&key(1)), Some(value(5, false)));
    }

    #[test]
    fn nested_savepoints_commit_into_their_parent() {
        let mut ledger = Ledger::default();
        ledger.lock(key(1), value(10, false), 1);
        // SAVEPOINT a (2), SAVEPOINT b (3).
        ledger.set(&key(1), value(11, true), 2);
        ledger.set(&key(1), value(12, true), 3);
        ledger.lock(key(2), value(0, false), 3);
        // RELEASE b: its changes and its lock now belong to a.
        ledger.commit_sub(3, 2);
        assert_eq!(ledger.get(&key(1)), Some(value(12, true)));
        // ROLLBACK TO a: back to before a, and the lock taken in b is gone.
        ledger.abort_sub(2);
        assert_eq!(ledger.get(&key(1)), Some(value(10, false)));
        assert_eq!(ledger.get(&key(2)), None);
    }

    #[test]
    fn released_savepoints_merge_up_to_the_top() {
        let mut ledger = Ledger::default();
        ledger.lock(key(1), value(1, false), 1);
        ledger.set(&key(1), value(2, true), 2);
        ledger.commit_sub(2, 1);
        // Later sibling savepoint (4) aborts: the change made in 2 stays.
        ledger.set(&key(1), value(3, true), 4);
        ledger.abort_sub(4);
        assert_eq!(ledger.get(&key(1)), Some(value(2, true)));
    }

    #[test]
    fn dirty_counters_come_out_in_a_stable_order() {
        let mut ledger = Ledger::default();
        for n in [3u8, 1, 2] {
            ledger.lock(key(n), value(0, false), 1);
            ledger.set(&key(n), value(1, true), 1);
        }
        let order: Vec<u8> = ledger
            .take_dirty()
            .iter()
            .map(|(k, _)| k.tenant[0])
            .collect();
        assert_eq!(order, vec![1, 2, 3]);
        ledger.clear();
        assert_eq!(ledger.get(&key(1)), None);
    }
}
