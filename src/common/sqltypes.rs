//! SQL argument types the contract uses that pgrx does not map by itself.
//!
//! The contract passes tables as `regclass` and columns as `name` (DESIGN.md,
//! "Safe by default"). pgrx's own `PgRelation` opens and locks the relation
//! when the argument is read, which is wrong for functions that must report a
//! dropped relation cleanly or take their own locks with a timeout; these
//! newtypes carry the raw value and nothing else.

use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::prelude::*;
use std::ffi::CStr;

/// An OID-alias SQL type (`regclass`, `regrole`) as a newtype over the OID,
/// read and returned by value, never looked up on the way in.
macro_rules! oid_alias {
    ($(#[$doc:meta])* $name:ident, $sql:literal, $type_oid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub pg_sys::Oid);

        impl $name {
            pub fn oid(self) -> pg_sys::Oid {
                self.0
            }
        }

        impl FromDatum for $name {
            unsafe fn from_polymorphic_datum(
                datum: pg_sys::Datum,
                is_null: bool,
                _typoid: pg_sys::Oid,
            ) -> Option<Self> {
                if is_null {
                    None
                } else {
                    // SAFETY: an OID-alias datum is an OID passed by value.
                    unsafe { pg_sys::Oid::from_datum(datum, false) }.map($name)
                }
            }
        }

        impl IntoDatum for $name {
            fn into_datum(self) -> Option<pg_sys::Datum> {
                Some(self.0.into())
            }

            fn type_oid() -> pg_sys::Oid {
                $type_oid
            }
        }

        // SAFETY: the argument's SQL type is the one this type maps to.
        unsafe impl<'fcx> ArgAbi<'fcx> for $name {
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                // SAFETY: the SQL signature declares this argument with this type.
                unsafe { arg.unbox_arg_using_from_datum() }
                    .unwrap_or_else(|| panic!("argument {index} must not be null"))
            }
        }

        // SAFETY: an OID is returned as a by-value datum of the declared type.
        unsafe impl BoxRet for $name {
            unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
                // SAFETY: an OID is a by-value datum.
                unsafe { fcinfo.return_raw_datum(self.0.into()) }
            }
        }

        pgrx::impl_sql_translatable!($name, $sql);
    };
}

oid_alias!(
    /// A `regclass` argument or result: a relation's OID, not yet opened.
    RegClass,
    "regclass",
    pg_sys::REGCLASSOID
);

oid_alias!(
    /// A `regrole` argument or result: a role's OID.
    RegRole,
    "regrole",
    pg_sys::REGROLEOID
);

/// A `name` argument (an identifier such as a column name), as Rust text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlName(pub String);

impl SqlName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromDatum for SqlName {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a name datum points at a NUL-terminated NameData.
        let cstr = unsafe { CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
        Some(SqlName(cstr.to_string_lossy().into_owned()))
    }
}

// SAFETY: the argument's SQL type is name.
unsafe impl<'fcx> ArgAbi<'fcx> for SqlName {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: the SQL signature declares this argument as name.
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

impl IntoDatum for SqlName {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // SAFETY: a palloc'd, zeroed NameData holding at most NAMEDATALEN - 1
        // bytes (cut at a character boundary, as PostgreSQL truncates names).
        unsafe {
            let name = pg_sys::palloc0(pg_sys::NAMEDATALEN as usize).cast::<u8>();
            let mut length = self.0.len().min(pg_sys::NAMEDATALEN as usize - 1);
            while !self.0.is_char_boundary(length) {
                length -= 1;
            }
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), name, length);
            Some(pg_sys::Datum::from(name))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::NAMEOID
    }
}

// SAFETY: a name is returned as a datum of the declared type.
unsafe impl BoxRet for SqlName {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        // SAFETY: into_datum always returns a datum for a name.
        unsafe { fcinfo.return_raw_datum(self.into_datum().expect("a name datum")) }
    }
}

pgrx::impl_sql_translatable!(SqlName, "name");
