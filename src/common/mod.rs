//! Pieces every capability shares: error constructors, SQL argument types,
//! relation lookups and the switch to the extension owner's privileges.

pub mod error;
pub mod privilege;
pub mod relation;
pub mod sqltypes;
