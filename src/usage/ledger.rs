//! The activity ledger: what each tenant's statements cost, in a fixed
//! number of entries, apart from the shared memory that holds it (`activity`).
//!
//! Each entry keeps one tenant's figures for the current period and the one
//! before it; an entry rolls forward lazily, when it is next written or read.
//! A tenant probes a short window of entries from its hash, and takes its own
//! entry or a free one; when the window is full, the entry that ranks lowest
//! (by the configured measure, over both periods) is folded into `other`, and
//! the newcomer takes its place. So memory is fixed whatever the number of
//! tenants, the figures of every tenant still tracked are exact, and the sum
//! over all entries plus `other` is the server's total.

/// Entries in the ledger: tenants followed at once.
pub const TRACKED: usize = 3072;
/// Entries a tenant may sit in, from its hash on.
const WINDOW: usize = 32;

/// What one tenant's statements cost in one period.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Figures {
    /// Statements that completed.
    pub calls: i64,
    /// Statements that failed (or were cancelled) after they started.
    pub errors: i64,
    /// Rows the statements returned or changed.
    pub rows: i64,
    /// Executor time, microseconds.
    pub exec_us: i64,
    /// CPU time of the backend (user and system), microseconds.
    pub cpu_us: i64,
    pub blks_hit: i64,
    pub blks_read: i64,
    pub wal_bytes: i64,
}

impl Figures {
    pub fn add(&mut self, other: &Figures) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.rows += other.rows;
        self.exec_us += other.exec_us;
        self.cpu_us += other.cpu_us;
        self.blks_hit += other.blks_hit;
        self.blks_read += other.blks_read;
        self.wal_bytes += other.wal_bytes;
    }

    pub fn is_empty(&self) -> bool {
        *self == Figures::default()
    }
}

/// The measure that ranks tenants (`tenancy.activity_rank_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Calls,
    Rows,
    ExecTime,
    CpuTime,
    Blocks,
    WalBytes,
    Errors,
}

impl Measure {
    fn of(self, f: &Figures) -> i64 {
        match self {
            Measure::Calls => f.calls,
            Measure::Rows => f.rows,
            Measure::ExecTime => f.exec_us,
            Measure::CpuTime => f.cpu_us,
            Measure::Blocks => f.blks_hit + f.blks_read,
            Measure::WalBytes => f.wal_bytes,
            Measure::Errors => f.errors,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Entry {
    pub tenant: [u8; 16],
    pub used: bool,
    /// The period `current` belongs to (see [`period_of`]).
    pub period: i64,
    pub current: Figures,
    pub previous: Figures,
}

impl Entry {
    /// Brings the entry to `period`: what was current becomes previous (or
    /// nothing, when a whole period passed without a statement).
    pub fn roll(&mut self, period: i64) {
        if period <= self.period {
            return;
        }
        self.previous = if period == self.period + 1 {
            self.current
        } else {
            Figures::default()
        };
        self.current = Figures::default();
        self.period = period;
    }

    fn score(&self, measure: Measure) -> i64 {
        measure.of(&self.current) + measure.of(&self.previous)
    }

    fn absorb(&mut self, other: &Entry) {
        self.current.add(&other.current);
        self.previous.add(&other.previous);
    }
}

/// The period a time falls in: periods of `seconds` seconds from the epoch.
pub fn period_of(micros: i64, seconds: i64) -> i64 {
    micros.div_euclid(seconds.max(1) * 1_000_000)
}

/// Adds `figures` to `tenant`'s entry for `period`, making room as the
/// module says. `entries` and `other` are rolled to `period` where touched.
pub fn record(
    entries: &mut [Entry],
    other: &mut Entry,
    tenant: &[u8; 16],
    figures: &Figures,
    period: i64,
    measure: Measure,
) {
    let first = super::bucket::window_start(entries.len(), tenant, 0);
    let window = WINDOW.min(entries.len());
    let mut free = None;
    let mut lowest: Option<usize> = None;
    for step in 0..window {
        let i = (first + step) % entries.len();
        let entry = &mut entries[i];
        if entry.used && entry.tenant == *tenant {
            entry.roll(period);
            entry.current.add(figures);
            return;
        }
        if !entry.used {
            free.get_or_insert(i);
            continue;
        }
        entry.roll(period);
        if lowest.is_none_or(|l| entries[l].score(measure) > entries[i].score(measure)) {
            lowest = Some(i);
        }
    }
    let i = match free {
        Some(i) => i,
        None => {
            let i = lowest.expect("a full window has a lowest entry");
            other.roll(period);
            let evicted = entries[i];
            other.absorb(&evicted);
            i
        }
    };
    entries[i] = Entry {
        tenant: *tenant,
        used: true,
        period,
        current: *figures,
        previous: Figures::default(),
    };
}

/// One line of the report: a tenant (None: every other tenant, summed).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub tenant: Option<[u8; 16]>,
    pub current: Figures,
    pub previous: Figures,
}

/// The `top` tenants by `measure` (over both periods, ties by tenant id),
/// and one line for all the rest: the tenants beyond the top and those
/// folded into `other`. `entries` is a copy, rolled here to `period`.
pub fn report(
    entries: &mut [Entry],
    other: &Entry,
    period: i64,
    top: usize,
    measure: Measure,
) -> Vec<Line> {
    let mut rest = *other;
    rest.roll(period);
    let mut used: Vec<&mut Entry> = entries.iter_mut().filter(|e| e.used).collect();
    for entry in used.iter_mut() {
        entry.roll(period);
    }
    used.retain(|e| !(e.current.is_empty() && e.previous.is_empty()));
    used.sort_by(|a, b| {
        b.score(measure)
            .cmp(&a.score(measure))
            .then(a.tenant.cmp(&b.tenant))
    });
    let mut lines = Vec::with_capacity(top.min(used.len()) + 1);
    for (rank, entry) in used.iter().enumerate() {
        if rank < top {
            lines.push(Line {
                tenant: Some(entry.tenant),
                current: entry.current,
                previous: entry.previous,
            });
        } else {
            rest.absorb(entry);
        }
    }
    lines.push(Line {
        tenant: None,
        current: rest.current,
        previous: rest.previous,
    });
    lines
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn calls(n: i64) -> Figures {
        Figures {
            calls: n,
            cpu_us: 10 * n,
            ..Figures::default()
        }
    }

    #[test]
    fn figures_add_up_per_tenant_and_roll_into_the_previous_period() {
        let mut entries = vec![Entry::default(); 64];
        let mut other = Entry::default();
        for _ in 0..3 {
            record(
                &mut entries,
                &mut other,
                &[1; 16],
                &calls(1),
                100,
                Measure::Calls,
            );
        }
        record(
            &mut entries,
            &mut other,
            &[2; 16],
            &calls(5),
            100,
            Measure::Calls,
        );
        record(
            &mut entries,
            &mut other,
            &[1; 16],
            &calls(2),
            101,
            Measure::Calls,
        );
        let lines = report(&mut entries.clone(), &other, 101, 10, Measure::Calls);
        assert_eq!(lines[0].tenant, Some([1; 16]));
        assert_eq!(lines[0].current.calls, 2);
        assert_eq!(lines[0].previous.calls, 3);
        assert_eq!(lines[1].tenant, Some([2; 16]));
        assert_eq!((lines[1].current.calls, lines[1].previous.calls), (0, 5));
        assert_eq!(lines[2].tenant, None);
        assert!(lines[2].current.is_empty());
        // Two periods later, nothing is left of period 100 or 101.
        let later = report(&mut entries.clone(), &other, 103, 10, Measure::Calls);
        assert_eq!(later.len(), 1);
    }

    #[test]
    fn beyond_the_top_the_rest_is_summed_as_other() {
        let mut entries = vec![Entry::default(); 64];
        let mut other = Entry::default();
        for n in 1..=5u8 {
            record(
                &mut entries,
                &mut other,
                &[n; 16],
                &calls(i64::from(n)),
                7,
                Measure::Calls,
            );
        }
        let lines = report(&mut entries, &other, 7, 2, Measure::Calls);
        let tenants: Vec<_> = lines.iter().map(|l| l.tenant).collect();
        assert_eq!(tenants, vec![Some([5; 16]), Some([4; 16]), None]);
        assert_eq!(lines[2].current.calls, 1 + 2 + 3);
    }

    #[test]
    fn a_full_window_folds_the_lowest_into_other_and_keeps_the_total() {
        let mut entries = vec![Entry::default(); WINDOW];
        let mut other = Entry::default();
        let mut total = 0;
        for n in 0..1000u32 {
            let mut tenant = [0u8; 16];
            tenant[..4].copy_from_slice(&n.to_le_bytes());
            let cost = i64::from(n % 7) + if n == 3 { 1000 } else { 0 };
            record(
                &mut entries,
                &mut other,
                &tenant,
                &calls(cost),
                1,
                Measure::Calls,
            );
            total += cost;
        }
        assert_eq!(entries.iter().filter(|e| e.used).count(), WINDOW);
        let lines = report(&mut entries, &other, 1, 3, Measure::Calls);
        assert_eq!(lines.len(), 4);
        // The heavy tenant was never the lowest of its window.
        let mut heavy = [0u8; 16];
        heavy[..4].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(lines[0].tenant, Some(heavy));
        assert_eq!(lines[0].current.calls, 1003);
        assert_eq!(lines.iter().map(|l| l.current.calls).sum::<i64>(), total);
    }
}
