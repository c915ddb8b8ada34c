//! The closed vocabulary of masking rules: parsing, which column types each
//! rule accepts, and the SQL expression it becomes in a masked view. Pure:
//! the only identifiers that reach SQL are quoted by the caller, and a rule
//! can only ever call one of our own functions with constant arguments.

use crate::common::sql::literal;

/// A masking rule, as `set_masking_rule` accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Email,
    Phone,
    Card,
    Name,
    Ip,
    Redact,
    Null,
    Pseudonymize,
    /// Keep that many characters at the start and at the end.
    Partial(i32, i32),
    /// Truncate a date or time to `day`, `month` or `year` (in UTC).
    Generalize(Precision),
    /// No masking: the column is only classified.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Day,
    Month,
    Year,
}

impl Precision {
    pub fn parse(text: &str) -> Option<Precision> {
        Some(match text {
            "day" => Precision::Day,
            "month" => Precision::Month,
            "year" => Precision::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Day => "day",
            Precision::Month => "month",
            Precision::Year => "year",
        }
    }
}

/// The accepted spellings, for error hints.
pub const VOCABULARY: &str =
    "email, phone, card, name, ip, redact, null, pseudonymize, partial(N,M), generalize(day|month|year), none";

/// Data classifications, from least to most sensitive.
pub const CLASSIFICATIONS: [&str; 4] = ["public", "internal", "confidential", "restricted"];

/// What kind of column a rule is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// text, varchar, char, citext (the masked value is text).
    Text,
    Inet,
    /// timestamptz, timestamp, date.
    Time,
    Other,
}

impl ColumnKind {
    /// From `pg_type.typname` of the column's type (domains resolved first).
    pub fn of(type_name: &str) -> ColumnKind {
        match type_name {
            "text" | "varchar" | "bpchar" | "citext" | "name" => ColumnKind::Text,
            "inet" => ColumnKind::Inet,
            "timestamptz" | "timestamp" | "date" => ColumnKind::Time,
            _ => ColumnKind::Other,
        }
    }
}

impl Rule {
    /// Parses a rule; spaces around parts are allowed, case is not.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let simple = match text {
            "email" => Some(Rule::Email),
            "phone" => Some(Rule::Phone),
            "card" => Some(Rule::Card),
            "name" => Some(Rule::Name),
            "ip" => Some(Rule::Ip),
            "redact" => Some(Rule::Redact),
            "null" => Some(Rule::Null),
            "pseudonymize" => Some(Rule::Pseudonymize),
            "none" => Some(Rule::None),
            _ => None,
        };
        if let Some(rule) = simple {
            return Ok(rule);
        }
        let (function, arguments) = text
            .strip_suffix(')')
            .and_then(|t| t.split_once('('))
            .ok_or_else(|| format!("unknown masking rule \"{text}\""))?;
        let arguments: Vec<&str> = arguments.split(',').map(str::trim).collect();
        match (function.trim(), arguments.as_slice()) {
            ("partial", [start, end]) => {
                let count = |n: &str| {
                    n.parse::<i32>()
                        .ok()
                        .filter(|n| (0..=1000).contains(n))
                        .ok_or_else(|| {
                            format!("partial() takes two counts from 0 to 1000, not \"{n}\"")
                        })
                };
                Ok(Rule::Partial(count(start)?, count(end)?))
            }
            ("generalize", [precision]) => Precision::parse(precision)
                .map(Rule::Generalize)
                .ok_or_else(|| {
                    format!("generalize() takes day, month or year, not \"{precision}\"")
                }),
            _ => Err(format!("unknown masking rule \"{text}\"")),
        }
    }

    /// The rule as stored and shown (canonical spelling).
    pub fn text(&self) -> String {
        match self {
            Rule::Email => "email".into(),
            Rule::Phone => "phone".into(),
            Rule::Card => "card".into(),
            Rule::Name => "name".into(),
            Rule::Ip => "ip".into(),
            Rule::Redact => "redact".into(),
            Rule::Null => "null".into(),
            Rule::Pseudonymize => "pseudonymize".into(),
            Rule::Partial(start, end) => format!("partial({start},{end})"),
            Rule::Generalize(precision) => format!("generalize({})", precision.name()),
            Rule::None => "none".into(),
        }
    }

    /// Whether the rule can mask a column of this kind and keep its type.
    pub fn accepts(&self, kind: ColumnKind) -> bool {
        match self {
            Rule::Null | Rule::None => true,
            Rule::Ip => kind == ColumnKind::Inet,
            Rule::Generalize(_) => kind == ColumnKind::Time,
            _ => kind == ColumnKind::Text,
        }
    }

    /// The expression masking `column` (already quoted) of SQL type
    /// `column_type` (already formatted by format_type): the same type as
    /// the column, so a masked view has the table's column types.
    pub fn expression(&self, column: &str, column_type: &str) -> String {
        let text = |function: &str| format!("tenancy.{function}({column})::{column_type}");
        match self {
            Rule::Email => text("mask_email"),
            Rule::Phone => text("mask_phone"),
            Rule::Card => text("mask_card"),
            Rule::Name => text("mask_name"),
            Rule::Redact => text("redact"),
            Rule::Pseudonymize => text("pseudonymize"),
            Rule::Ip => format!("tenancy.mask_ip({column})"),
            Rule::Null => format!("NULL::{column_type}"),
            Rule::Partial(start, end) => {
                format!("tenancy.mask_partial({column}, {start}, {end})::{column_type}")
            }
            // timestamptz is truncated in UTC (the result must not depend on
            // the reader's TimeZone); timestamp and date have no zone.
            Rule::Generalize(precision) if column_type == "timestamp with time zone" => {
                format!(
                    "tenancy.generalize_date({column}, {})",
                    literal(precision.name())
                )
            }
            // Through timestamp, never timestamptz: that cast would read the
            // date in the reader's TimeZone.
            Rule::Generalize(precision) => format!(
                "pg_catalog.date_trunc({}, {column}::pg_catalog.timestamp)::{column_type}",
                literal(precision.name())
            ),
            Rule::None => column.to_string(),
        }
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn vocabulary_round_trips() {
        for text in [
            "email",
            "phone",
            "card",
            "name",
            "ip",
            "redact",
            "null",
            "pseudonymize",
            "partial(2,3)",
            "generalize(month)",
            "none",
        ] {
            assert_eq!(Rule::parse(text).unwrap().text(), text);
        }
        assert_eq!(
            Rule::parse(" partial( 1 , 0 ) ").unwrap(),
            Rule::Partial(1, 0)
        );
    }

    #[test]
    fn nothing_outside_the_vocabulary() {
        for text in [
            "",
            "EMAIL",
            "email()",
            "partial(1)",
            "partial(1,2,3)",
            "partial(-1,2)",
            "partial(a,b)",
            "partial(1,2); DROP TABLE x",
            "generalize(week)",
            "generalize(month) || 'x'",
            "pg_read_file('/etc/passwd')",
            "tenancy.mask_email",
            "partial(1,2)x",
        ] {
            assert!(Rule::parse(text).is_err(), "{text:?} must be refused");
        }
    }

    #[test]
    fn rules_keep_the_column_type() {
        assert!(Rule::Email.accepts(ColumnKind::Text));
        assert!(!Rule::Email.accepts(ColumnKind::Other));
        assert!(!Rule::Redact.accepts(ColumnKind::Time));
        assert!(Rule::Ip.accepts(ColumnKind::Inet));
        assert!(!Rule::Ip.accepts(ColumnKind::Text));
        assert!(Rule::Generalize(Precision::Year).accepts(ColumnKind::Time));
        assert!(Rule::Null.accepts(ColumnKind::Other));
        assert_eq!(ColumnKind::of("bpchar"), ColumnKind::Text);
        assert_eq!(
            Rule::Partial(1, 2).expression("\"Card No\"", "character varying(20)"),
            "tenancy.mask_partial(\"Card No\", 1, 2)::character varying(20)"
        );
        assert_eq!(
            Rule::Generalize(Precision::Month).expression("born", "date"),
            "pg_catalog.date_trunc('month', born::pg_catalog.timestamp)::date"
        );
        assert_eq!(
            Rule::Generalize(Precision::Year).expression("seen", "timestamp with time zone"),
            "tenancy.generalize_date(seen, 'year')"
        );
    }
}
