//! Pure logic of health checks: a value against its thresholds, and the
//! anti-flap rule that turns a series of samples into alert actions.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }

    /// 0, 1, 2: the figure Prometheus gets.
    pub fn severity(self) -> u8 {
        self as u8
    }

    pub fn is_bad(self) -> bool {
        self != Status::Ok
    }
}

/// One row of `tenancy.health_thresholds`, as the evaluation needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub higher_is_worse: bool,
    pub alert_after: i32,
}

impl Default for Thresholds {
    /// A check without a row in the table: reported, never bad.
    fn default() -> Self {
        Thresholds {
            warn: None,
            crit: None,
            higher_is_worse: true,
            alert_after: 2,
        }
    }
}

impl Thresholds {
    /// A value at or above a threshold trips it (or below it, when lower is
    /// worse); a value that could not be measured (NULL) is ok.
    pub fn status(&self, value: Option<f64>) -> Status {
        let Some(value) = value else {
            return Status::Ok;
        };
        let trips = |threshold: Option<f64>| match threshold {
            Some(t) if self.higher_is_worse => value >= t,
            Some(t) => value < t,
            None => false,
        };
        if trips(self.crit) {
            Status::Critical
        } else if trips(self.warn) {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// How many samples in a row a check has been bad (or good).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    pub bad: bool,
    pub length: i32,
}

impl Streak {
    /// The streak after one more sample with `status`.
    pub fn next(previous: Option<Streak>, status: Status) -> Streak {
        let bad = status.is_bad();
        match previous {
            Some(p) if p.bad == bad => Streak {
                bad,
                length: p.length.saturating_add(1),
            },
            _ => Streak { bad, length: 1 },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    /// Nothing to write: all is well, or a bad streak is still too short.
    None,
    /// Open a new alert for the check.
    Open,
    /// The open alert stays open with the new value and status.
    Refresh,
    /// The open alert is resolved.
    Resolve,
}

/// The anti-flap rule: an alert opens after `alert_after` bad samples in a
/// row, and resolves after `alert_after` good samples in a row. While it is
/// open, every bad sample refreshes it; a shorter good streak leaves it open.
pub fn alert_action(streak: Streak, alert_open: bool, alert_after: i32) -> AlertAction {
    let long_enough = streak.length >= alert_after.max(1);
    match (streak.bad, alert_open) {
        (true, true) => AlertAction::Refresh,
        (true, false) if long_enough => AlertAction::Open,
        (false, true) if long_enough => AlertAction::Resolve,
        _ => AlertAction::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn higher(warn: f64, crit: f64) -> Thresholds {
        Thresholds {
            warn: Some(warn),
            crit: Some(crit),
            ..Thresholds::default()
        }
    }

    #[test]
    fn values_reach_thresholds_from_below_or_above() {
        let t = higher(80.0, 95.0);
        assert_eq!(t.status(Some(79.9)), Status::Ok);
        assert_eq!(t.status(Some(80.0)), Status::Warning);
        assert_eq!(t.status(Some(95.0)), Status::Critical);
        assert_eq!(t.status(None), Status::Ok);
        let lower = Thresholds {
            higher_is_worse: false,
            ..higher(98.0, 90.0)
        };
        assert_eq!(lower.status(Some(99.5)), Status::Ok);
        assert_eq!(lower.status(Some(98.0)), Status::Ok);
        assert_eq!(lower.status(Some(97.9)), Status::Warning);
        assert_eq!(lower.status(Some(10.0)), Status::Critical);
    }

    #[test]
    fn a_missing_level_never_trips() {
        let warn_only = Thresholds {
            crit: None,
            ..higher(1.0, 0.0)
        };
        assert_eq!(warn_only.status(Some(1e12)), Status::Warning);
        assert_eq!(Thresholds::default().status(Some(1e12)), Status::Ok);
    }

    #[test]
    fn one_bad_sample_opens_nothing_two_open_one_alert() {
        let mut streak = None;
        let mut open = false;
        let mut actions = vec![];
        for status in [
            Status::Ok,
            Status::Warning,
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Critical,
            Status::Ok,
            Status::Warning,
            Status::Ok,
            Status::Ok,
        ] {
            let s = Streak::next(streak, status);
            let action = alert_action(s, open, 2);
            match action {
                AlertAction::Open => open = true,
                AlertAction::Resolve => open = false,
                _ => {}
            }
            streak = Some(s);
            actions.push(action);
        }
        use AlertAction::{Open, Refresh, Resolve};
        let quiet = AlertAction::None;
        assert_eq!(
            actions,
            [quiet, quiet, quiet, quiet, Open, Refresh, quiet, Refresh, quiet, Resolve]
        );
    }

    #[test]
    fn alert_after_one_reacts_to_every_sample() {
        let s = Streak::next(None, Status::Warning);
        assert_eq!(alert_action(s, false, 1), AlertAction::Open);
        let s = Streak::next(Some(s), Status::Ok);
        assert_eq!(alert_action(s, true, 1), AlertAction::Resolve);
    }
}
