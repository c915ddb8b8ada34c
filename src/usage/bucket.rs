//! Token buckets in a fixed table of slots: the arithmetic of `throttle`,
//! apart from the shared memory that holds the table (`shared`).
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens a
//! second; a call costing `cost` is admitted when that many are there, and
//! takes them. A bucket not seen before starts full. The table has a fixed
//! number of slots: a key probes a short window from its hash, takes its own
//! slot or a free one, and when the window is full replaces the slot used
//! least recently (that bucket starts full again when its key comes back).

/// Slots in the table.
pub const SLOTS: usize = 4096;
/// Slots a key may sit in, from its hash on.
const WINDOW: usize = 16;

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Slot {
    tenant: [u8; 16],
    resource: u64,
    tokens: f64,
    /// When `tokens` was last brought up to date (microseconds).
    updated: i64,
    used: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub admitted: bool,
    /// Tokens left after the call.
    pub tokens: f64,
    /// When refused: microseconds until the call would be admitted.
    pub wait_micros: i64,
}

/// FNV-1a of a resource name: the slot key holds this, not the name.
pub fn resource_hash(resource: &str) -> u64 {
    resource
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// The first slot of the window a key probes, among `slots` (the
/// accounting ledger places tenants with it too, with resource 0).
pub fn window_start(slots: usize, tenant: &[u8; 16], resource: u64) -> usize {
    let mixed = u128::from_le_bytes(*tenant) ^ u128::from(resource);
    let folded = (mixed as u64) ^ ((mixed >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % slots
}

/// Spends `cost` tokens of `tenant`'s bucket for `resource` at time `now`
/// (microseconds), if it holds them.
pub fn take(
    slots: &mut [Slot],
    tenant: &[u8; 16],
    resource: u64,
    rate: Rate,
    cost: f64,
    now: i64,
) -> Decision {
    let first = window_start(slots.len(), tenant, resource);
    let window = WINDOW.min(slots.len());
    let mut chosen = None;
    let mut oldest: Option<usize> = None;
    for step in 0..window {
        let i = (first + step) % slots.len();
        let slot = &slots[i];
        if slot.used && slot.tenant == *tenant && slot.resource == resource {
            chosen = Some(i);
            break;
        }
        if !slot.used {
            chosen.get_or_insert(i);
        } else if oldest.is_none_or(|o| slots[o].updated > slot.updated) {
            oldest = Some(i);
        }
    }
    let i = chosen.or(oldest).expect("the window has a slot");
    let slot = &mut slots[i];
    if !(slot.used && slot.tenant == *tenant && slot.resource == resource) {
        *slot = Slot {
            tenant: *tenant,
            resource,
            tokens: rate.burst,
            updated: now,
            used: true,
        };
    }
    let elapsed = (now - slot.updated).max(0) as f64 / 1e6;
    slot.tokens = (slot.tokens + elapsed * rate.per_second).min(rate.burst);
    slot.updated = slot.updated.max(now);
    if slot.tokens >= cost {
        slot.tokens -= cost;
        Decision {
            admitted: true,
            tokens: slot.tokens,
            wait_micros: 0,
        }
    } else {
        let missing = cost - slot.tokens;
        Decision {
            admitted: false,
            tokens: slot.tokens,
            wait_micros: (missing / rate.per_second * 1e6).ceil() as i64,
        }
    }
}

/// Forgets every bucket (they start full again).
pub fn clear(slots: &mut [Slot]) {
    slots.fill(Slot::default());
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 10.0,
        burst: 5.0,
    };

    #[test]
    fn a_new_bucket_admits_its_burst_then_refills_at_the_rate() {
        let mut slots = vec![Slot::default(); 64];
        let tenant = [1; 16];
        let r = resource_hash("api");
        let admitted = (0..8)
            .filter(|_| take(&mut slots, &tenant, r, RATE, 1.0, 0).admitted)
            .count();
        assert_eq!(admitted, 5);
        let refused = take(&mut slots, &tenant, r, RATE, 1.0, 0);
        assert!(!refused.admitted);
        assert_eq!(refused.wait_micros, 100_000);
        // 0.25 s later: 2.5 tokens, so two calls of one.
        assert!(take(&mut slots, &tenant, r, RATE, 1.0, 250_000).admitted);
        assert!(take(&mut slots, &tenant, r, RATE, 1.0, 250_000).admitted);
        assert!(!take(&mut slots, &tenant, r, RATE, 1.0, 250_000).admitted);
        // Never more than the burst, however long it waited.
        let later = take(&mut slots, &tenant, r, RATE, 0.0, 60_000_000);
        assert_eq!(later.tokens, 5.0);
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let mut slots = vec![Slot::default(); 64];
        let api = resource_hash("api");
        let export = resource_hash("export");
        for _ in 0..5 {
            assert!(take(&mut slots, &[1; 16], api, RATE, 1.0, 0).admitted);
        }
        assert!(!take(&mut slots, &[1; 16], api, RATE, 1.0, 0).admitted);
        assert!(take(&mut slots, &[2; 16], api, RATE, 1.0, 0).admitted);
        assert!(take(&mut slots, &[1; 16], export, RATE, 1.0, 0).admitted);
    }

    #[test]
    fn a_full_table_replaces_the_least_recently_used_bucket() {
        let mut slots = vec![Slot::default(); WINDOW];
        for n in 0..WINDOW as u8 {
            take(&mut slots, &[n; 16], 1, RATE, 5.0, i64::from(n));
        }
        // Every slot is taken and empty; a new key takes tenant 0's slot.
        assert!(take(&mut slots, &[200; 16], 1, RATE, 5.0, 100).admitted);
        assert!(slots.iter().all(|s| s.tenant != [0; 16]));
        // Tenant 1 kept its (empty) bucket.
        assert!(!take(&mut slots, &[1; 16], 1, RATE, 5.0, 100).admitted);
    }
}
