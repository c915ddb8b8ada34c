//! One constructor per kind of user-facing error, so every capability reports
//! the SQLSTATEs of the contract (`../DESIGN.md`, "Clear errors") the same way.
//!
//! pgrx turns a returned `Err(ErrorReport)` into an `ereport(ERROR)` with the
//! report's own SQLSTATE, detail and hint; any other error type becomes 22000
//! and a panic becomes XX000. Panics are kept for real bugs.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

pub type Result<T> = std::result::Result<T, ErrorReport>;

/// The function name PostgreSQL shows in the error's location (VERBOSITY verbose).
const SOURCE: &str = "pg_tenancy";

#[track_caller]
fn report(code: PgSqlErrorCode, message: impl Into<String>) -> ErrorReport {
    ErrorReport::new(code, message.into(), SOURCE)
}

/// 22023: an argument has a value the function cannot accept.
#[track_caller]
pub fn invalid_parameter(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message)
}

/// 42P01: a relation the caller named does not exist (any more).
#[track_caller]
pub fn undefined_table(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, message)
}

/// 42703: a column the caller named does not exist.
#[track_caller]
pub fn undefined_column(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, message)
}

/// 42804: a column exists but has a type the feature cannot work with.
#[track_caller]
pub fn datatype_mismatch(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, message)
}

/// 42809: the object exists but is the wrong kind (a view where a table is needed).
#[track_caller]
pub fn wrong_object_type(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, message)
}

/// 0A000: not supported here (on a Citus worker, on a distributed table).
#[track_caller]
pub fn feature_not_supported(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, message)
}

/// 55000: the object is not in the state the operation needs.
#[track_caller]
pub fn not_in_prerequisite_state(message: impl Into<String>) -> ErrorReport {
    report(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        message,
    )
}

/// 55P03: a lock could not be taken in time.
#[track_caller]
pub fn lock_not_available(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE, message)
}

/// 42501: the caller lacks a privilege the operation needs.
#[track_caller]
pub fn insufficient_privilege(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message)
}

/// 53400: a tenant's quota does not allow what was asked.
#[track_caller]
pub fn quota_exceeded(message: impl Into<String>) -> ErrorReport {
    report(
        PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
        message,
    )
}

/// 22008: a date or time outside what the operation can handle.
#[track_caller]
pub fn datetime_out_of_range(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW, message)
}

/// 54000: a result would exceed what PostgreSQL can hold (a text value's 1 GB).
#[track_caller]
pub fn program_limit_exceeded(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, message)
}

/// 23505: the object the caller wants to create already exists.
#[track_caller]
pub fn unique_violation(message: impl Into<String>) -> ErrorReport {
    report(PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION, message)
}

/// Unwraps a nullable SQL argument, raising 22023 naming the argument when it is NULL.
///
/// API functions are declared non-STRICT on purpose: a STRICT function silently
/// returns NULL for a NULL argument, and the contract forbids silent no-ops.
#[track_caller]
pub fn required<T>(value: Option<T>, argument: &str) -> Result<T> {
    value.ok_or_else(|| invalid_parameter(format!("argument \"{argument}\" must not be NULL")))
}

/// Reports a NOTICE (used for idempotent administration: "already enabled").
pub fn notice(message: impl Into<String>) {
    report(PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, message).report(PgLogLevel::NOTICE);
}

/// Reports a NOTICE with a hint.
pub fn notice_with_hint(message: impl Into<String>, hint: impl Into<String>) {
    report(PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, message)
        .set_hint(hint)
        .report(PgLogLevel::NOTICE);
}

/// Reports a WARNING with a hint.
pub fn warning_with_hint(message: impl Into<String>, hint: impl Into<String>) {
    report(PgSqlErrorCode::ERRCODE_WARNING, message)
        .set_hint(hint)
        .report(PgLogLevel::WARNING);
}
