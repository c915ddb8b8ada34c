//! PII detection: what a column's name and a sample of its values suggest.
//! The classifiers are pure; `detect_pii` (in `api`) feeds them names and
//! sampled values read with the caller's own rights.

use super::rules::{ColumnKind, Precision, Rule};

/// A suggestion for one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub rule: Rule,
    pub reason: String,
}

/// What the column name alone suggests.
pub fn from_name(column: &str, kind: ColumnKind) -> Option<Suggestion> {
    let name = column.to_ascii_lowercase();
    let words: Vec<&str> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |candidates: &[&str]| words.iter().any(|w| candidates.contains(w));
    let contains = |needles: &[&str]| needles.iter().any(|n| name.contains(n));
    let rule = match kind {
        // An inet column holds addresses whatever its name.
        ColumnKind::Inet => Rule::Ip,
        ColumnKind::Time
            if has(&["birth", "birthday", "dob", "born", "birthdate"]) || contains(&["birth"]) =>
        {
            Rule::Generalize(Precision::Year)
        }
        ColumnKind::Text if contains(&["email", "e_mail", "mail_address"]) || has(&["mail"]) => {
            Rule::Email
        }
        ColumnKind::Text
            if has(&[
                "phone",
                "mobile",
                "tel",
                "telephone",
                "fax",
                "msisdn",
                "cell",
            ]) || contains(&["phone"]) =>
        {
            Rule::Phone
        }
        ColumnKind::Text
            if has(&["card", "ccnum", "pan", "cc"])
                || contains(&["card_number", "cardnumber", "credit_card"]) =>
        {
            Rule::Card
        }
        ColumnKind::Text
            if has(&["ssn", "passport", "iban", "nino", "sin"])
                || contains(&[
                    "social_security",
                    "national_id",
                    "tax_id",
                    "taxid",
                    "drivers_license",
                    "license_number",
                ]) =>
        {
            Rule::Redact
        }
        ColumnKind::Text
            if contains(&["password", "passwd", "secret", "api_key", "apikey", "token"]) =>
        {
            Rule::Null
        }
        ColumnKind::Text
            if has(&[
                "name",
                "firstname",
                "lastname",
                "surname",
                "fullname",
                "forename",
            ]) && !has(&[
                "user", "username", "file", "table", "product", "company", "org", "host", "domain",
                "tenant",
            ]) =>
        {
            Rule::Name
        }
        ColumnKind::Text if has(&["address", "street", "postcode", "zip", "zipcode", "postal"]) => {
            Rule::Redact
        }
        ColumnKind::Text if has(&["ip", "ipaddr"]) => Rule::Redact,
        _ => return None,
    };
    Some(Suggestion {
        reason: format!("column name \"{column}\" suggests {}", describe(&rule)),
        rule,
    })
}

fn describe(rule: &Rule) -> &'static str {
    match rule {
        Rule::Email => "an email address",
        Rule::Phone => "a phone number",
        Rule::Card => "a payment card number",
        Rule::Name => "a person's name",
        Rule::Ip => "an IP address",
        Rule::Generalize(_) => "a date of birth",
        Rule::Null => "a secret",
        Rule::Redact => "an identifier or address",
        _ => "personal data",
    }
}

/// The kinds of value the sampler recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Email,
    Card,
    Phone,
    Ip,
}

/// Luhn's checksum, which every payment card number passes.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// What one value looks like, if it is one of the recognised kinds.
pub fn classify(value: &str) -> Option<ValueKind> {
    let value = value.trim();
    if looks_like_email(value) {
        return Some(ValueKind::Email);
    }
    if value.parse::<std::net::IpAddr>().is_ok() {
        return Some(ValueKind::Ip);
    }
    let mut digits = Vec::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            ' ' | '-' | '.' | '(' | ')' | '+' | '/' => {}
            _ => return None,
        }
    }
    let separators_only_between = !value.starts_with(['-', '.', '/']);
    if (13..=19).contains(&digits.len()) && luhn(&digits) && !value.contains(['(', ')', '+']) {
        return Some(ValueKind::Card);
    }
    if (7..=15).contains(&digits.len()) && separators_only_between {
        return Some(ValueKind::Phone);
    }
    None
}

/// What a sample of values suggests: the kind most of them (at least half)
/// share.
pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Suggestion> {
    let mut counts = [0usize; 4];
    let mut total = 0usize;
    for value in values {
        total += 1;
        if let Some(kind) = classify(value) {
            counts[kind as usize] += 1;
        }
    }
    let (index, &count) = counts.iter().enumerate().max_by_key(|(_, c)| **c)?;
    if total == 0 || count * 2 < total {
        return None;
    }
    let (rule, what) = match index {
        0 => (Rule::Email, "email addresses"),
        1 => (Rule::Card, "payment card numbers (Luhn)"),
        2 => (Rule::Phone, "phone numbers"),
        // Addresses in a text column: the ip rule needs inet.
        _ => (Rule::Redact, "IP addresses"),
    };
    Some(Suggestion {
        rule,
        reason: format!("{count} of {total} sampled values are {what}"),
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn names() {
        let rule = |n: &str, k| from_name(n, k).map(|s| s.rule);
        assert_eq!(rule("email", ColumnKind::Text), Some(Rule::Email));
        assert_eq!(
            rule("contact_email_address", ColumnKind::Text),
            Some(Rule::Email)
        );
        assert_eq!(rule("mobile_phone", ColumnKind::Text), Some(Rule::Phone));
        assert_eq!(rule("card_number", ColumnKind::Text), Some(Rule::Card));
        assert_eq!(rule("first_name", ColumnKind::Text), Some(Rule::Name));
        assert_eq!(rule("FullName", ColumnKind::Text), Some(Rule::Name));
        assert_eq!(rule("full_name", ColumnKind::Text), Some(Rule::Name));
        assert_eq!(rule("username", ColumnKind::Text), None);
        assert_eq!(rule("product_name", ColumnKind::Text), None);
        assert_eq!(rule("ssn", ColumnKind::Text), Some(Rule::Redact));
        assert_eq!(rule("password_hash", ColumnKind::Text), Some(Rule::Null));
        assert_eq!(
            rule("date_of_birth", ColumnKind::Time),
            Some(Rule::Generalize(Precision::Year))
        );
        assert_eq!(rule("last_login_ip", ColumnKind::Inet), Some(Rule::Ip));
        assert_eq!(rule("created_at", ColumnKind::Time), None);
        assert_eq!(rule("status", ColumnKind::Text), None);
    }

    #[test]
    fn values() {
        assert_eq!(classify("john.doe@example.com"), Some(ValueKind::Email));
        assert_eq!(classify("not an email@"), None);
        assert_eq!(classify("4111 1111 1111 1111"), Some(ValueKind::Card));
        assert_eq!(
            classify("4111 1111 1111 1112"),
            None,
            "16 digits failing Luhn: neither card nor phone"
        );
        assert_eq!(classify("+1 (555) 123-4567"), Some(ValueKind::Phone));
        assert_eq!(classify("10.1.2.3"), Some(ValueKind::Ip));
        assert_eq!(classify("2001:db8::1"), Some(ValueKind::Ip));
        assert_eq!(classify("hello"), None);
        assert_eq!(classify("12"), None);
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }

    #[test]
    fn samples() {
        let emails = ["a@b.co", "c@d.org", "nothing", "x@y.net"];
        assert_eq!(from_values(emails).unwrap().rule, Rule::Email);
        assert_eq!(
            from_values(emails).unwrap().reason,
            "3 of 4 sampled values are email addresses"
        );
        assert_eq!(from_values(["a", "b", "c@d.org"]), None);
        assert_eq!(from_values(std::iter::empty()), None);
    }
}
