//! The masking functions' logic on plain strings, with no server in sight.
//!
//! Every function accepts any input (malformed, empty, non-ASCII) and never
//! fails: an error that depended on the value would tell whoever can provoke
//! it something about the value, and the SQL wrappers are declared LEAKPROOF.
//! Characters are Unicode scalar values, never bytes, so a multibyte name is
//! masked, not cut in the middle of a character.

/// What replaces the hidden part of emails and names.
pub const STARS: &str = "***";

/// Byte length of the first `count` characters of `text`.
fn prefix_bytes(text: &str, count: usize) -> usize {
    if text.is_ascii() {
        return count.min(text.len());
    }
    text.char_indices()
        .nth(count)
        .map_or(text.len(), |(at, _)| at)
}

/// Number of characters in `text`.
fn char_count(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// `john.doe@example.com` → `jo***@example.com`: the first two characters of
/// the local part (one when it has only two, none when it has one), then
/// `***`, then the domain. Without `@` the whole value is treated as a local
/// part (`jo***`). With several, the last one separates the domain.
pub fn mask_email(value: &str, out: &mut String) {
    // A plain reverse scan: emails are short, and memrchr's setup costs more.
    let (local, domain) = match value.bytes().rposition(|b| b == b'@') {
        Some(at) => (&value[..at], Some(&value[at + 1..])),
        None => (value, None),
    };
    let keep = char_count(local).saturating_sub(1).min(2);
    out.push_str(&local[..prefix_bytes(local, keep)]);
    out.push_str(STARS);
    if let Some(domain) = domain {
        out.push('@');
        out.push_str(domain);
    }
}

/// Characters a phone or card number may be written with that are kept.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '+' | '/')
}

/// Every digit but the last four becomes `*`; separators stay; anything else
/// (letters, `ext.`) becomes `*` too, so nothing but the last four digits and
/// the layout survives. Shared by `mask_phone` and `mask_card`.
pub fn mask_digits(value: &str, out: &mut String) {
    if value.is_ascii() {
        // One byte per character: copy, then mask in place from the end,
        // where the four kept digits are.
        let start = out.len();
        // SAFETY: ASCII bytes go in and only ASCII bytes are written.
        let bytes = unsafe { out.as_mut_vec() };
        bytes.extend_from_slice(value.as_bytes());
        let mut keep = 4;
        for b in bytes[start..].iter_mut().rev() {
            if b.is_ascii_digit() {
                if keep > 0 {
                    keep -= 1;
                } else {
                    *b = b'*';
                }
            } else if !is_separator(*b as char) {
                *b = b'*';
            }
        }
        return;
    }
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    let mut seen = 0;
    for c in value.chars() {
        if c.is_ascii_digit() {
            seen += 1;
            out.push(if digits - seen < 4 { c } else { '*' });
        } else if is_separator(c) {
            out.push(c);
        } else {
            out.push('*');
        }
    }
}

/// Length of the UTF-8 sequence starting with `lead`.
fn utf8_length(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// `Jean-Luc Picard` → `J*** P***`: the first letter of each word, then
/// `***`; words are separated by whitespace, which becomes single spaces.
pub fn mask_name(value: &str, out: &mut String) {
    // Whitespace beyond ASCII (no-break space...) stays inside a word.
    let bytes = value.as_bytes();
    let mut i = 0;
    let mut first = true;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if !first {
            out.push(' ');
        }
        first = false;
        let end = (i + utf8_length(bytes[i])).min(bytes.len());
        out.push_str(&value[i..end]);
        out.push_str(STARS);
        i = end;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
    }
}

/// How many of a value's `length` characters `mask_partial` keeps at the start
/// and at the end. A value those kept parts would reveal entirely is filled
/// completely; negative counts keep nothing.
pub fn kept_counts(length: usize, keep_start: i32, keep_end: i32) -> (usize, usize) {
    let keep_start = keep_start.max(0) as usize;
    let keep_end = keep_end.max(0) as usize;
    if keep_start.saturating_add(keep_end) >= length {
        (0, 0)
    } else {
        (keep_start, keep_end)
    }
}

/// Keeps `keep_start` characters at the start and `keep_end` at the end and
/// replaces every other character with `fill` (see [`kept_counts`]). The
/// reference the SQL function's writer (which builds its result in place,
/// sql_functions.rs) is tested against.
#[cfg(test)]
pub fn mask_partial(value: &str, keep_start: i32, keep_end: i32, fill: &str, out: &mut String) {
    let length = value.chars().count();
    let (keep_start, keep_end) = kept_counts(length, keep_start, keep_end);
    for (index, c) in value.chars().enumerate() {
        if index < keep_start || index >= length - keep_end {
            out.push(c);
        } else {
            out.push_str(fill);
        }
    }
}

/// The parts of `mask_partial`'s result for a value of `units` characters whose
/// kept start is `head_bytes` long and kept end `tail_bytes`: how many times
/// `fill` repeats, and the result's length in bytes. None when that length
/// does not fit in `usize` at all.
pub fn partial_size(
    units: usize,
    (keep_start, keep_end): (usize, usize),
    head_bytes: usize,
    tail_bytes: usize,
    fill_bytes: usize,
) -> Option<(usize, usize)> {
    let repeats = units - keep_start - keep_end;
    let size = repeats
        .checked_mul(fill_bytes)?
        .checked_add(head_bytes)?
        .checked_add(tail_bytes)?;
    Some((repeats, size))
}

/// The network an address belongs to: IPv4 keeps its first 24 bits, IPv6 its
/// first 48, host bits zero (`192.168.7.41` → `192.168.7.0/24`). A value that
/// is already a wider network keeps its own prefix. Input and output are
/// PostgreSQL's inet text (`addr` or `addr/bits`); None for text that is not
/// an address (inet_in never produces such text).
pub fn mask_ip(value: &str) -> Option<String> {
    let (address, bits) = match value.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
        None => (value, None),
    };
    let address: std::net::IpAddr = address.parse().ok()?;
    Some(match address {
        std::net::IpAddr::V4(v4) => {
            let bits = bits.unwrap_or(32).min(24);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            format!("{}/{bits}", std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        std::net::IpAddr::V6(v6) => {
            let bits = bits.unwrap_or(128).min(48);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            format!("{}/{bits}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    })
}

/// The replacement of `redact`.
pub const REDACTED: &str = "[REDACTED]";

/// A timestamp (PostgreSQL's microseconds since 2000-01-01 UTC) truncated in
/// UTC to the start of its day, month or year, computed in days so that no
/// value PostgreSQL holds overflows (the Unix microseconds of its last years
/// do not fit in 64 bits).
pub fn generalize_postgres(stored: i64, precision: super::rules::Precision) -> i64 {
    use crate::common::calendar::MICROS_PER_DAY;
    const POSTGRES_EPOCH_DAYS: i64 = 10_957; // 1970-01-01 to 2000-01-01
    let unix_day = stored.div_euclid(MICROS_PER_DAY) + POSTGRES_EPOCH_DAYS;
    // The start is never later than the value, so its microseconds fit.
    (start_day(unix_day, precision) - POSTGRES_EPOCH_DAYS) * MICROS_PER_DAY
}

/// The first day (since 1970-01-01) of the day, month or year holding `days`.
fn start_day(days: i64, precision: super::rules::Precision) -> i64 {
    use super::rules::Precision;
    use crate::common::calendar::{civil_from_days, days_from_civil};
    let (year, month, day) = civil_from_days(days);
    match precision {
        Precision::Day => days_from_civil(year, month, day),
        Precision::Month => days_from_civil(year, month, 1),
        Precision::Year => days_from_civil(year, 1, 1),
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn run(f: impl Fn(&str, &mut String), value: &str) -> String {
        let mut out = String::new();
        f(value, &mut out);
        out
    }

    #[test]
    fn emails() {
        assert_eq!(run(mask_email, "john.doe@example.com"), "jo***@example.com");
        assert_eq!(run(mask_email, "ab@example.com"), "a***@example.com");
        assert_eq!(run(mask_email, "a@example.com"), "***@example.com");
        assert_eq!(run(mask_email, "@example.com"), "***@example.com");
        assert_eq!(run(mask_email, "not an email"), "no***");
        assert_eq!(run(mask_email, "x"), "***");
        assert_eq!(run(mask_email, ""), "***");
        assert_eq!(run(mask_email, "\"a@b\"@example.com"), "\"a***@example.com");
        assert_eq!(run(mask_email, "élodie@exemple.fr"), "él***@exemple.fr");
        assert_eq!(run(mask_email, "用户名@例子.中国"), "用户***@例子.中国");
    }

    #[test]
    fn phones_and_cards() {
        assert_eq!(run(mask_digits, "+1 (555) 123-4567"), "+* (***) ***-4567");
        assert_eq!(
            run(mask_digits, "4111 1111 1111 1111"),
            "**** **** **** 1111"
        );
        assert_eq!(run(mask_digits, "4111111111111111"), "************1111");
        assert_eq!(run(mask_digits, "123"), "123");
        assert_eq!(run(mask_digits, "call me"), "**** **");
        // The last four digits are 3, 4, 1, 2: the extension counts.
        assert_eq!(run(mask_digits, "555-1234 ext. 12"), "***-**34 ***. 12");
        assert_eq!(run(mask_digits, ""), "");
        assert_eq!(run(mask_digits, "０１２３４５"), "******");
    }

    #[test]
    fn names() {
        assert_eq!(run(mask_name, "John Doe"), "J*** D***");
        assert_eq!(run(mask_name, "  Jean-Luc   Picard "), "J*** P***");
        assert_eq!(run(mask_name, "Élodie Ñúñez"), "É*** Ñ***");
        assert_eq!(run(mask_name, "李小龙"), "李***");
        assert_eq!(run(mask_name, ""), "");
        assert_eq!(run(mask_name, "   "), "");
    }

    #[test]
    fn partial() {
        let p = |v: &str, s: i32, e: i32, f: &str| {
            let mut out = String::new();
            mask_partial(v, s, e, f, &mut out);
            out
        };
        assert_eq!(p("4111111111111111", 4, 4, "*"), "4111********1111");
        assert_eq!(p("secret", 1, 1, "#"), "s####t");
        assert_eq!(p("ab", 1, 1, "*"), "**");
        assert_eq!(p("abc", 5, 0, "*"), "***");
        assert_eq!(p("abc", -1, -7, "*"), "***");
        assert_eq!(p("ñandú", 1, 0, "·"), "ñ····");
        assert_eq!(p("", 1, 1, "*"), "");
        assert_eq!(p("abc", 0, 0, ""), "");
        assert_eq!(p("abcdef", i32::MAX, i32::MAX, "*"), "******");
    }

    #[test]
    fn partial_sizes() {
        assert_eq!(kept_counts(16, 4, 4), (4, 4));
        assert_eq!(kept_counts(8, 4, 4), (0, 0));
        assert_eq!(kept_counts(8, i32::MAX, 1), (0, 0));
        assert_eq!(kept_counts(8, -3, 2), (0, 2));
        // 8 repeats of a 3-byte fill plus 4 + 4 kept bytes.
        assert_eq!(partial_size(16, (4, 4), 4, 4, 3), Some((8, 32)));
        assert_eq!(partial_size(usize::MAX, (0, 0), 0, 0, 2), None);
    }

    #[test]
    fn dates_generalize_in_utc() {
        use super::super::rules::Precision;
        use crate::common::calendar::{days_from_civil, MICROS_PER_DAY};
        // PostgreSQL's microseconds since 2000-01-01.
        let at = |y, m, d| (days_from_civil(y, m, d) - 10_957) * MICROS_PER_DAY;
        let t = at(2024, 2, 29) + 13 * 3_600_000_000 + 5;
        assert_eq!(generalize_postgres(t, Precision::Day), at(2024, 2, 29));
        assert_eq!(generalize_postgres(t, Precision::Month), at(2024, 2, 1));
        assert_eq!(generalize_postgres(t, Precision::Year), at(2024, 1, 1));
        assert_eq!(
            generalize_postgres(at(1969, 12, 31) + 1, Precision::Year),
            at(1969, 1, 1)
        );
        // The last microsecond PostgreSQL represents (294276-12-31 23:59:59.999999)
        // and its first, without overflowing.
        let last = 9_223_371_331_199_999_999;
        assert_eq!(
            generalize_postgres(last, Precision::Year),
            at(294_276, 1, 1)
        );
        let first = -211_813_488_000_000_000;
        assert_eq!(generalize_postgres(first, Precision::Day), first);
    }

    #[test]
    fn ips() {
        assert_eq!(mask_ip("192.168.7.41").unwrap(), "192.168.7.0/24");
        assert_eq!(mask_ip("192.168.7.41/32").unwrap(), "192.168.7.0/24");
        assert_eq!(mask_ip("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(
            mask_ip("2001:db8:abcd:12::1").unwrap(),
            "2001:db8:abcd::/48"
        );
        assert_eq!(mask_ip("::1/128").unwrap(), "::/48");
        assert_eq!(mask_ip("::ffff:1.2.3.4").unwrap(), "::/48");
        assert_eq!(mask_ip("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(mask_ip("garbage"), None);
    }
}
