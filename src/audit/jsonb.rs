//! Writing `jsonb` values in PostgreSQL's binary format directly.
//!
//! The audit trigger turns every changed row into a JSON object. Building it
//! through PostgreSQL's `to_jsonb(record)` costs a catalog lookup per column
//! per row; here the per-table work (key order, type categories) is done once
//! and each row is written straight into the on-disk layout of `jsonb`
//! (src/include/utils/jsonb.h), byte-identical to what PostgreSQL produces.
//! Pure code: unit tests check the layout, in-backend tests compare bytes
//! with PostgreSQL's own encoding.

use std::cmp::Ordering;

pub const JB_FSCALAR: u32 = 0x1000_0000;
pub const JB_FOBJECT: u32 = 0x2000_0000;
pub const JB_CMASK: u32 = 0x0FFF_FFFF;

const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
/// Every 32nd entry stores an end offset instead of a length.
const JB_OFFSET_STRIDE: usize = 32;

/// One JSON value to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// UTF-8 text, unescaped (jsonb stores strings raw).
    String(&'a [u8]),
    /// A `numeric` datum's bytes with a 4-byte varlena header.
    Numeric(&'a [u8]),
    /// A `JsonbContainer` (an object or array) taken from another jsonb.
    Container(&'a [u8]),
}

/// jsonb's order of object keys: shorter first, then bytewise.
pub fn key_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn pad_to_int(buffer: &mut Vec<u8>) -> usize {
    let padding = (4 - buffer.len() % 4) % 4;
    buffer.extend(std::iter::repeat_n(0u8, padding));
    padding
}

/// Appends a complete jsonb varlena (4-byte header included) holding one
/// object of `count` pairs, key `i` and value `i` given by the closures. Keys
/// must come sorted by [`key_order`] and distinct; the caller sorts once per
/// table, not per row.
pub fn write_object<'a>(
    out: &mut Vec<u8>,
    count: usize,
    key: impl Fn(usize) -> &'a [u8],
    value: impl Fn(usize) -> Value<'a>,
) {
    debug_assert!((1..count).all(|i| key_order(key(i - 1), key(i)) == Ordering::Less));
    let start = out.len();
    debug_assert_eq!(start % 4, 0, "a varlena starts int-aligned");
    out.extend_from_slice(&[0u8; 4]); // varlena header, set below
    out.extend_from_slice(&(count as u32 | JB_FOBJECT).to_ne_bytes());
    let entries_at = out.len();
    out.resize(entries_at + 8 * count, 0);
    let data_at = out.len();
    let mut previous_end = 0usize;
    let mut set_entry = |out: &mut Vec<u8>, index: usize, kind: u32| {
        let end = out.len() - data_at;
        let entry = if index.is_multiple_of(JB_OFFSET_STRIDE) {
            kind | JENTRY_HAS_OFF | end as u32
        } else {
            kind | (end - previous_end) as u32
        };
        previous_end = end;
        let at = entries_at + 4 * index;
        out[at..at + 4].copy_from_slice(&entry.to_ne_bytes());
    };
    for index in 0..count {
        out.extend_from_slice(key(index));
        set_entry(out, index, JENTRY_ISSTRING);
    }
    for index in 0..count {
        let kind = match value(index) {
            Value::Null => JENTRY_ISNULL,
            Value::Bool(false) => JENTRY_ISBOOL_FALSE,
            Value::Bool(true) => JENTRY_ISBOOL_TRUE,
            Value::String(bytes) => {
                out.extend_from_slice(bytes);
                JENTRY_ISSTRING
            }
            Value::Numeric(bytes) => {
                pad_to_int(out);
                out.extend_from_slice(bytes);
                JENTRY_ISNUMERIC
            }
            Value::Container(bytes) => {
                pad_to_int(out);
                out.extend_from_slice(bytes);
                JENTRY_ISCONTAINER
            }
        };
        set_entry(out, count + index, kind);
    }
    let size = (out.len() - start) as u32;
    // SET_VARSIZE for a 4-byte header.
    out[start..start + 4].copy_from_slice(&varsize_header(size).to_ne_bytes());
}

/// [`write_object`] for pairs in a slice.
#[cfg(any(test, feature = "pg_test"))]
pub fn write_pairs(out: &mut Vec<u8>, pairs: &[(&[u8], Value)]) {
    write_object(out, pairs.len(), |i| pairs[i].0, |i| pairs[i].1);
}

/// The 4-byte varlena header word for a datum of `size` bytes.
#[cfg(target_endian = "little")]
pub fn varsize_header(size: u32) -> u32 {
    size << 2
}

#[cfg(target_endian = "big")]
pub fn varsize_header(size: u32) -> u32 {
    size & 0x3FFF_FFFF
}

/// Reads the value of a jsonb whose root is a scalar (jsonb stores `5` or
/// `"x"` as a one-element array flagged scalar). `container` is the root
/// container (after the varlena header). None for objects and arrays.
pub fn root_scalar(container: &[u8]) -> Option<Value<'_>> {
    let header = u32::from_ne_bytes(container.get(0..4)?.try_into().ok()?);
    if header & JB_FSCALAR == 0 || header & JB_CMASK != 1 {
        return None;
    }
    let entry = u32::from_ne_bytes(container.get(4..8)?.try_into().ok()?);
    let length = (entry & JENTRY_OFFLENMASK) as usize; // the first entry holds its end offset
    let data = container.get(8..8 + length)?;
    Some(match entry & JENTRY_TYPEMASK {
        JENTRY_ISNULL => Value::Null,
        JENTRY_ISBOOL_FALSE => Value::Bool(false),
        JENTRY_ISBOOL_TRUE => Value::Bool(true),
        JENTRY_ISSTRING => Value::String(data),
        // The data starts int-aligned already (offset 8), so no padding to skip.
        JENTRY_ISNUMERIC => Value::Numeric(data),
        _ => return None,
    })
}

/// PostgreSQL's `numeric` for an integer, as `int8_numeric` makes it: the
/// short format (header word, then base-10000 digits, most significant
/// first, without leading or trailing zero digits), with a 4-byte varlena
/// header. Appended to `out`, which must be int-aligned at its end.
pub fn numeric_from_i64(value: i64, out: &mut Vec<u8>) {
    const NUMERIC_SHORT: u16 = 0x8000;
    const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
    const NUMERIC_SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
    const NUMERIC_SHORT_WEIGHT_MASK: u16 = 0x003F;
    // |i64::MIN| has 19 decimal digits: five base-10000 digits at most.
    let mut digits = [0u16; 5];
    let mut count = 0;
    let mut magnitude = value.unsigned_abs();
    while magnitude > 0 {
        digits[count] = (magnitude % 10_000) as u16;
        magnitude /= 10_000;
        count += 1;
    }
    digits[..count].reverse();
    // weight: index of the first digit counted from the units digit (0 = units).
    let weight = count as i32 - 1;
    while count > 0 && digits[count - 1] == 0 {
        count -= 1;
    }
    let mut header = NUMERIC_SHORT;
    if count > 0 {
        if value < 0 {
            header |= NUMERIC_SHORT_SIGN_MASK;
        }
        if weight < 0 {
            header |= NUMERIC_SHORT_WEIGHT_SIGN_MASK;
        }
        header |= (weight as u16) & NUMERIC_SHORT_WEIGHT_MASK;
    }
    // Zero: no digits, weight 0, positive.
    let size = 4 + 2 + 2 * count;
    out.extend_from_slice(&varsize_header(size as u32).to_ne_bytes());
    out.extend_from_slice(&header.to_ne_bytes());
    for digit in &digits[..count] {
        out.extend_from_slice(&digit.to_ne_bytes());
    }
}

/// PostgreSQL's `numeric` for a plain decimal string (`-12.5`, `0.00001`,
/// `1000000000000000000000`), as `numeric_in` makes it: base-10000 digits
/// aligned on the decimal point, leading and trailing zero digits dropped,
/// the display scale the number of digits after the point; short format when
/// it fits, long otherwise. False (nothing written) for anything else.
pub fn numeric_from_decimal(text: &str, out: &mut Vec<u8>) -> bool {
    // Scientific notation (what float8out prints for very large or small
    // values): shift the point, as numeric_in does.
    let expanded;
    let text = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => match expand_exponent(mantissa, exponent) {
            Some(plain) => {
                expanded = plain;
                expanded.as_str()
            }
            None => return false,
        },
        None => text,
    };
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, fraction) = body.split_once('.').unwrap_or((body, ""));
    if integer.is_empty()
        || !integer.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let (integer, fraction) = (integer.as_bytes(), fraction.as_bytes());
    let dscale = fraction.len();
    // Base-10000 digit `i`: the integer part grouped from the right (the
    // first group padded with leading zeros), the fraction from the left
    // (the last group padded with trailing zeros). Computed on demand, so
    // nothing is allocated (the float path runs this for every value).
    let integer_groups = integer.len().div_ceil(4);
    let pad = integer_groups * 4 - integer.len();
    let groups = integer_groups + dscale.div_ceil(4);
    let group = |i: usize| -> u16 {
        let mut value = 0u16;
        for k in 0..4 {
            let digit = if i < integer_groups {
                (i * 4 + k).checked_sub(pad).map(|at| integer[at])
            } else {
                fraction.get((i - integer_groups) * 4 + k).copied()
            };
            value = value * 10 + digit.map_or(0, |d| (d - b'0') as u16);
        }
        value
    };
    let first = (0..groups).find(|&i| group(i) != 0);
    let (first, end) = match first {
        Some(first) => (
            first,
            (first..groups).rfind(|&i| group(i) != 0).unwrap() + 1,
        ),
        None => (0, 0),
    };
    let count = end - first;
    let negative = negative && count > 0;
    let weight = if count == 0 {
        0
    } else {
        integer_groups as i32 - 1 - first as i32
    };
    let short = dscale <= 63 && (-64..=63).contains(&weight);
    let header_size = if short { 2 } else { 4 };
    let size = 4 + header_size + 2 * count;
    out.extend_from_slice(&varsize_header(size as u32).to_ne_bytes());
    if short {
        let mut header: u16 = 0x8000 | ((dscale as u16) << 7) & 0x1F80;
        if negative {
            header |= 0x2000;
        }
        if weight < 0 {
            header |= 0x0040;
        }
        header |= (weight as u16) & 0x003F;
        out.extend_from_slice(&header.to_ne_bytes());
    } else {
        let sign_dscale: u16 = if negative { 0x4000 } else { 0 } | (dscale as u16 & 0x3FFF);
        out.extend_from_slice(&sign_dscale.to_ne_bytes());
        out.extend_from_slice(&(weight as i16).to_ne_bytes());
    }
    for i in first..end {
        out.extend_from_slice(&group(i).to_ne_bytes());
    }
    true
}

/// `1.5` and `-07` into `0.00000015`: the same digits with the point moved.
fn expand_exponent(mantissa: &str, exponent: &str) -> Option<String> {
    let exponent: i32 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .ok()?;
    if exponent.abs() > 1000 {
        return None;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if integer.is_empty()
        || !integer
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{integer}{fraction}");
    let point = integer.len() as i32 + exponent; // position of the point in `digits`
    let text = if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (left, right) = digits.split_at(point as usize);
        format!("{sign}{left}.{right}")
    };
    Some(text)
}

/// Writes `bytes` as the 36-character text of a UUID.
pub fn uuid_text(bytes: &[u8; 16], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(byte >> 4) as usize]);
        out.push(HEX[(byte & 0x0F) as usize]);
    }
}

/// What `to_jsonb` writes for a date or timestamp (JsonEncodeDateTime): ISO
/// 8601 with a `T`, fractional seconds without trailing zeros, and for
/// timestamptz the session zone's offset as `+hh:mm`. Only for years 1 to
/// 9999 and a zone with a fixed offset (`offset_east` seconds east of UTC);
/// None means "let PostgreSQL format it".
pub fn datetime_text(
    unix_micros: i64,
    offset_east: Option<i64>,
    with_time: bool,
    out: &mut Vec<u8>,
) -> Option<()> {
    let local = unix_micros.checked_add(offset_east.unwrap_or(0).checked_mul(1_000_000)?)?;
    let days = local.div_euclid(86_400_000_000);
    let micros_of_day = local.rem_euclid(86_400_000_000);
    let (year, month, day) = crate::common::calendar::civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    // Digits written by hand: this runs for every date in every audited row,
    // and core::fmt costs more than the rest of the value.
    push_digits(out, year as u64, 4);
    out.push(b'-');
    push_digits(out, month as u64, 2);
    out.push(b'-');
    push_digits(out, day as u64, 2);
    if !with_time {
        return Some(());
    }
    let seconds = micros_of_day / 1_000_000;
    let fraction = micros_of_day % 1_000_000;
    out.push(b'T');
    push_digits(out, (seconds / 3600) as u64, 2);
    out.push(b':');
    push_digits(out, (seconds / 60 % 60) as u64, 2);
    out.push(b':');
    push_digits(out, (seconds % 60) as u64, 2);
    if fraction != 0 {
        // Six digits, trailing zeros dropped.
        let mut digits = 6;
        let mut fraction = fraction as u64;
        while fraction.is_multiple_of(10) {
            fraction /= 10;
            digits -= 1;
        }
        out.push(b'.');
        push_digits(out, fraction, digits);
    }
    if let Some(offset) = offset_east {
        out.push(if offset >= 0 { b'+' } else { b'-' });
        let magnitude = offset.unsigned_abs();
        push_digits(out, magnitude / 3600, 2);
        out.push(b':');
        push_digits(out, magnitude / 60 % 60, 2);
        if magnitude % 60 != 0 {
            out.push(b':');
            push_digits(out, magnitude % 60, 2);
        }
    }
    Some(())
}

/// Appends `value` in decimal, zero-padded to `width` digits (`value` must fit).
fn push_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for at in (start..start + width).rev() {
        out[at] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    debug_assert_eq!(value, 0, "value wider than {width} digits");
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    const JB_FARRAY: u32 = 0x4000_0000;

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn keys_sort_shorter_first() {
        let mut keys: Vec<&[u8]> = vec![b"name", b"id", b"tenant_id", b"a", b"zz"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, vec![&b"a"[..], b"id", b"zz", b"name", b"tenant_id"]);
    }

    #[test]
    fn object_layout() {
        // {"a": "xy", "bb": true}
        let mut out = Vec::new();
        write_pairs(
            &mut out,
            &[(b"a", Value::String(b"xy")), (b"bb", Value::Bool(true))],
        );
        assert_eq!(u32_at(&out, 0), varsize_header(out.len() as u32));
        assert_eq!(u32_at(&out, 4), 2 | JB_FOBJECT);
        // Entry 0 holds an end offset (stride), the others lengths.
        assert_eq!(u32_at(&out, 8), JENTRY_HAS_OFF | 1);
        assert_eq!(u32_at(&out, 12), 2);
        assert_eq!(u32_at(&out, 16), JENTRY_ISSTRING | 2);
        assert_eq!(u32_at(&out, 20), JENTRY_ISBOOL_TRUE);
        assert_eq!(&out[24..], b"abbxy");
    }

    #[test]
    fn numerics_are_int_aligned_with_padding_counted() {
        let mut number = Vec::new();
        numeric_from_i64(7, &mut number);
        let mut out = Vec::new();
        write_pairs(&mut out, &[(b"k", Value::Numeric(&number))]);
        // data: "k" (1 byte) then 3 padding bytes, then the numeric.
        assert_eq!(
            u32_at(&out, 12),
            JENTRY_ISNUMERIC | (3 + number.len() as u32)
        );
        assert_eq!(&out[20..20 + number.len()], &number[..]);
    }

    #[test]
    fn integer_numerics() {
        let digits = |v: i64| {
            let mut out = Vec::new();
            numeric_from_i64(v, &mut out);
            let header = u16::from_ne_bytes(out[4..6].try_into().unwrap());
            let digits: Vec<u16> = out[6..]
                .chunks(2)
                .map(|c| u16::from_ne_bytes(c.try_into().unwrap()))
                .collect();
            (header, digits, u32_at(&out, 0) >> 2)
        };
        assert_eq!(digits(0), (0x8000, vec![], 6));
        assert_eq!(digits(7), (0x8000, vec![7], 8));
        assert_eq!(digits(10_000), (0x8001, vec![1], 8));
        assert_eq!(digits(123_456_789), (0x8002, vec![1, 2345, 6789], 12));
        assert_eq!(digits(-5), (0xA000, vec![5], 8));
        assert_eq!(digits(i64::MIN).1, vec![922, 3372, 368, 5477, 5808]);
    }

    #[test]
    fn decimal_numerics_match_the_integer_path() {
        for value in [0i64, 7, -5, 10_000, 123_456_789, -987_654_321_012] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            numeric_from_i64(value, &mut a);
            assert!(numeric_from_decimal(&value.to_string(), &mut b));
            assert_eq!(a, b, "{value}");
        }
        let mut out = Vec::new();
        assert!(numeric_from_decimal("0.00001", &mut out));
        // dscale 5, weight -2, one digit 1000.
        assert_eq!(
            u16::from_ne_bytes(out[4..6].try_into().unwrap()),
            0x8000 | (5 << 7) | 0x0040 | (-2i32 as u16 & 0x3F)
        );
        assert_eq!(u16::from_ne_bytes(out[6..8].try_into().unwrap()), 1000);
        let mut out = Vec::new();
        assert!(numeric_from_decimal("-0", &mut out));
        assert_eq!(u16::from_ne_bytes(out[4..6].try_into().unwrap()), 0x8000);
        assert!(!numeric_from_decimal("NaN", &mut Vec::new()));
        // Scientific notation is expanded first.
        for (scientific, plain) in [
            ("1e+21", "1000000000000000000000"),
            ("-2.3815697977122048e+16", "-23815697977122048"),
            ("1.5e-07", "0.00000015"),
            ("5e-324", &format!("0.{}5", "0".repeat(323))),
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert!(numeric_from_decimal(scientific, &mut a), "{scientific}");
            assert!(numeric_from_decimal(plain, &mut b), "{plain}");
            assert_eq!(a, b, "{scientific}");
        }
        // Too many fraction digits for the short format: long format.
        let tiny = format!("{}", 1.5e-300f64);
        let mut out = Vec::new();
        assert!(numeric_from_decimal(&tiny, &mut out));
        assert_eq!(
            u16::from_ne_bytes(out[4..6].try_into().unwrap()) & 0x8000,
            0
        );
    }

    #[test]
    fn scalar_roots() {
        // A jsonb string scalar: header 1|SCALAR|ARRAY, one entry, data.
        let mut container = Vec::new();
        container.extend_from_slice(&(1 | JB_FSCALAR | JB_FARRAY).to_ne_bytes());
        container.extend_from_slice(&(JENTRY_HAS_OFF | JENTRY_ISSTRING | 3).to_ne_bytes());
        container.extend_from_slice(b"abc");
        assert_eq!(root_scalar(&container), Some(Value::String(b"abc")));
        let mut object = Vec::new();
        object.extend_from_slice(&JB_FOBJECT.to_ne_bytes());
        assert_eq!(root_scalar(&object), None);
    }

    #[test]
    fn datetimes() {
        let text = |micros: i64, offset: Option<i64>, with_time: bool| {
            let mut out = Vec::new();
            datetime_text(micros, offset, with_time, &mut out)
                .map(|_| String::from_utf8(out).unwrap())
        };
        // 2026-03-29 01:30:00.1234 UTC
        let t = 1_774_747_800_123_400;
        assert_eq!(
            text(t, Some(0), true).as_deref(),
            Some("2026-03-29T01:30:00.1234+00:00")
        );
        assert_eq!(
            text(t, None, true).as_deref(),
            Some("2026-03-29T01:30:00.1234")
        );
        assert_eq!(
            text(t, Some(19_800), true).as_deref(),
            Some("2026-03-29T07:00:00.1234+05:30")
        );
        assert_eq!(
            text(t, Some(-3_600), true).as_deref(),
            Some("2026-03-29T00:30:00.1234-01:00")
        );
        assert_eq!(
            text(t - 123_400, Some(0), true).as_deref(),
            Some("2026-03-29T01:30:00+00:00")
        );
        assert_eq!(text(t, None, false).as_deref(), Some("2026-03-29"));
        assert_eq!(text(-62_200_000_000_000_000, Some(0), true), None);
    }

    #[test]
    fn uuids() {
        let mut out = Vec::new();
        uuid_text(
            &[
                0x6f, 0x1c, 0x2e, 0x1e, 0x8f, 0x1a, 0x4a, 0x51, 0x9a, 0x53, 0x5d, 0x0f, 0x4f, 0x3b,
                0x2a, 0x10,
            ],
            &mut out,
        );
        assert_eq!(out, b"6f1c2e1e-8f1a-4a51-9a53-5d0f4f3b2a10");
    }
}
