//! Pieces every capability shares: error constructors, SQL argument types,
//! relation lookups, the clock, subtransactions and privilege switches.

pub mod calendar;
pub mod citus;
pub mod clock;
pub mod error;
pub mod executor;
pub mod hooks;
pub mod internal_writes;
pub mod invalidation;
pub mod locks;
pub mod privilege;
pub mod relation;
pub mod selection;
pub mod settings;
pub mod sql;
pub mod sqltypes;
pub mod subxact;
pub mod transition;
pub mod triggers;
pub mod tupdesc;
pub mod varlena;
