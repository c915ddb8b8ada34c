//! Prometheus text exposition format (version 0.0.4): families with HELP and
//! TYPE lines, label values escaped, samples without a value left out.

pub struct Family {
    /// A valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub name: String,
    pub help: String,
    pub kind: &'static str,
    pub samples: Vec<Sample>,
}

pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    /// The value as PostgreSQL prints a numeric (a valid Prometheus float).
    pub value: String,
}

impl Family {
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind: "gauge",
            samples: vec![],
        }
    }

    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family {
            kind: "counter",
            ..Family::gauge(name, help)
        }
    }

    pub fn add(&mut self, labels: Vec<(&'static str, String)>, value: Option<String>) {
        if let Some(value) = value {
            self.samples.push(Sample { labels, value });
        }
    }
}

/// A metric name made of `text`: characters outside `[a-zA-Z0-9_]` become `_`.
pub fn metric_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and line feed.
fn escape_help(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        out.push_str("# HELP ");
        out.push_str(&family.name);
        out.push(' ');
        escape_help(&family.help, &mut out);
        out.push_str("\n# TYPE ");
        out.push_str(&family.name);
        out.push(' ');
        out.push_str(family.kind);
        out.push('\n');
        for sample in &family.samples {
            out.push_str(&family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (label, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(label);
                    out.push_str("=\"");
                    escape_label(value, &mut out);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&sample.value);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_print_help_type_and_escaped_labels() {
        let mut f = Family::gauge("pg_tenancy_x", "A \\ help\nline");
        f.add(vec![("tenant", "a\"b\\c\nd".into())], Some("1.50".into()));
        f.add(vec![("tenant", "none".into())], None);
        let mut empty = Family::counter("pg_tenancy_empty", "nothing");
        empty.add(vec![], None);
        assert_eq!(
            render(&[f, empty]),
            "# HELP pg_tenancy_x A \\\\ help\\nline\n# TYPE pg_tenancy_x gauge\n\
             pg_tenancy_x{tenant=\"a\\\"b\\\\c\\nd\"} 1.50\n"
        );
    }

    #[test]
    fn metric_names_are_sanitised() {
        assert_eq!(metric_name("cache hit-ratio"), "cache_hit_ratio");
        assert_eq!(metric_name("9lives"), "_9lives");
    }
}
