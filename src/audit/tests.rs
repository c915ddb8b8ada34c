//! In-backend tests of the audit capture: byte-exact jsonb, and audit rows
//! that say exactly what PostgreSQL's own `to_jsonb` says about every type.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use crate::audit::jsonb::{self, Value};
    use pgrx::prelude::*;

    /// Every partition of the audit log, those made at the first audited
    /// table and those maintenance premakes later, gets the BRIN index and
    /// the statement guard from audit's partition hook.
    #[pg_test]
    fn audit_log_partitions_get_their_index_and_guard() {
        let children = || {
            Spi::get_one::<i64>(
                "SELECT count(*) FROM pg_partition_tree('tenancy.audit_log') t
                   JOIN pg_class c ON c.oid = t.relid WHERE c.relkind = 'r'",
            )
            .unwrap()
            .unwrap()
        };
        Spi::run(
            "CREATE TABLE hooked (id int PRIMARY KEY);
             SELECT tenancy.enable_audit('hooked');",
        )
        .unwrap();
        let first = children();
        Spi::run(
            "SET LOCAL tenancy.now_override = '2031-06-15 00:00:00+00';
             SELECT tenancy.run_maintenance('tenancy.audit_log');",
        )
        .unwrap();
        assert!(children() > first, "maintenance made new partitions");
        let lacking = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_partition_tree('tenancy.audit_log') t
               JOIN pg_class c ON c.oid = t.relid
              WHERE c.relkind = 'r'
                AND (NOT EXISTS (SELECT FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                                   JOIN pg_am a ON a.oid = ic.relam
                                  WHERE i.indrelid = c.oid AND a.amname = 'brin')
                  OR NOT EXISTS (SELECT FROM pg_trigger g
                                  WHERE g.tgrelid = c.oid AND g.tgname = 'tenancy_no_changes'))",
        )
        .unwrap();
        assert_eq!(lacking, Some(0));
    }

    /// Raw bytes of a jsonb value PostgreSQL parsed from `text`.
    fn postgres_jsonb_bytes(text: &str) -> Vec<u8> {
        Spi::get_one_with_args::<Vec<u8>>("SELECT tests.jsonb_raw($1::jsonb)", &[text.into()])
            .unwrap()
            .unwrap()
    }

    /// The bytes of a jsonb datum as PostgreSQL stores it.
    #[pg_extern(immutable)]
    fn jsonb_raw(value: pgrx::JsonB) -> Vec<u8> {
        stored_bytes(value.into_datum().unwrap())
    }

    /// The bytes of a varlena datum just built, detoasted, header included.
    fn stored_bytes(datum: pg_sys::Datum) -> Vec<u8> {
        // SAFETY: a varlena datum just built; detoasting returns a
        // 4-byte-header copy of it.
        unsafe {
            let varlena = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
            let size = pgrx::varsize_any(varlena);
            std::slice::from_raw_parts(varlena as *const u8, size).to_vec()
        }
    }

    #[pg_test]
    fn audit_jsonb_writer_matches_postgres_bytes() {
        let mut seven = Vec::new();
        jsonb::numeric_from_i64(7, &mut seven);
        let nested = postgres_jsonb_bytes(r#"{"x": [1, "two"]}"#);
        let mut object = Vec::new();
        jsonb::write_pairs(
            &mut object,
            &[
                (b"a", Value::String(b"xy")),
                (b"n", Value::Numeric(&seven)),
                (b"bb", Value::Bool(true)),
                (b"nul", Value::Null),
                (b"nest", Value::Container(&nested[4..])),
            ],
        );
        let theirs = postgres_jsonb_bytes(
            r#"{"a": "xy", "n": 7, "bb": true, "nul": null, "nest": {"x": [1, "two"]}}"#,
        );
        assert_eq!(object, theirs);
        // More than 32 keys: every 32nd entry stores an offset instead of a length.
        let keys: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
        let pairs: Vec<(&[u8], Value)> = keys
            .iter()
            .map(|k| (k.as_bytes(), Value::String(k.as_bytes())))
            .collect();
        let mut wide = Vec::new();
        jsonb::write_pairs(&mut wide, &pairs);
        let text = format!(
            "{{{}}}",
            keys.iter()
                .map(|k| format!("\"{k}\": \"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(wide, postgres_jsonb_bytes(&text));
    }

    #[pg_test]
    fn audit_integer_numerics_are_byte_identical() {
        for value in [
            0i64,
            1,
            -1,
            9999,
            10_000,
            123_456_789,
            -42_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let mut ours = Vec::new();
            jsonb::numeric_from_i64(value, &mut ours);
            let theirs = Spi::get_one_with_args::<Vec<u8>>(
                "SELECT tests.numeric_raw($1::numeric)",
                &[value.into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(ours, theirs, "{value}");
        }
    }

    #[pg_test]
    fn audit_decimal_numerics_are_byte_identical() {
        let samples = [
            "0",
            "-0",
            "0.1",
            "-12.5",
            "0.00001",
            "123.456",
            "1000000000000000000000",
            "99999999.99990001",
            "0.30000000000000004",
            "5e-324",
        ];
        let mut values: Vec<String> = samples.iter().map(|s| s.to_string()).collect();
        // Shortest float texts, as the float path produces them.
        let mut x = 0.123_456_789f64;
        for _ in 0..200 {
            x = x * 7.0 + 0.1;
            if x > 1e12 {
                x /= 3.3e11;
            }
            values.push(format!("{x}"));
            values.push(format!("{}", 1.0 / x));
        }
        for text in values.iter().filter(|t| !t.contains('e')) {
            let mut ours = Vec::new();
            assert!(jsonb::numeric_from_decimal(text, &mut ours), "{text}");
            let theirs = Spi::get_one_with_args::<Vec<u8>>(
                "SELECT tests.numeric_raw($1::numeric)",
                &[text.as_str().into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[pg_extern(immutable)]
    fn numeric_raw(value: pgrx::AnyNumeric) -> Vec<u8> {
        stored_bytes(value.into_datum().unwrap())
    }

    /// changed_cols is written by hand: the same bytes construct_array makes.
    #[pg_test]
    fn audit_changed_cols_array_is_byte_identical() {
        for names in [
            vec!["qty"],
            vec!["a", "bb", "ccc", "dddd", "name with spaces ✓"],
        ] {
            let mut chunks = crate::audit::chunks::Chunks::default();
            // SAFETY: chunks of this test hold the array until it is read below.
            let ours = unsafe {
                let datum = crate::audit::capture::text_array(
                    &mut chunks,
                    names.iter().map(|n| n.as_bytes()),
                );
                let size = pgrx::varsize_any(datum.cast_mut_ptr());
                std::slice::from_raw_parts(datum.cast_mut_ptr::<u8>(), size).to_vec()
            };
            let theirs = Spi::get_one_with_args::<Vec<u8>>(
                "SELECT tests.text_array_raw($1)",
                &[names.clone().into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(ours, theirs, "{names:?}");
        }
    }

    /// The bytes of a text[] as construct_array builds it.
    #[pg_extern(immutable)]
    fn text_array_raw(names: Vec<String>) -> Vec<u8> {
        // SAFETY: construct_array gets valid text datums of the right type.
        unsafe {
            let mut elements: Vec<pg_sys::Datum> = names
                .iter()
                .map(|n| {
                    let n = std::ffi::CString::new(n.as_str()).unwrap();
                    pg_sys::Datum::from(pg_sys::cstring_to_text(n.as_ptr()))
                })
                .collect();
            let array = pg_sys::construct_array(
                elements.as_mut_ptr(),
                elements.len() as i32,
                pg_sys::TEXTOID,
                -1,
                false,
                pg_sys::TYPALIGN_INT as std::ffi::c_char,
            );
            let size = pgrx::varsize_any(array.cast());
            std::slice::from_raw_parts(array as *const u8, size).to_vec()
        }
    }

    /// Every kind of column, every odd value: the audit row's new_row is
    /// exactly `to_jsonb(row)`, in text and by equality, in several time zones.
    #[pg_test]
    fn audit_rows_match_to_jsonb_for_every_type() {
        Spi::run(
            "CREATE TYPE audit_mood AS ENUM ('sad', 'ok');
             CREATE TYPE audit_pair AS (a int, b text);
             CREATE DOMAIN audit_positive AS numeric CHECK (VALUE > 0);
             CREATE TABLE audit_types (
                 id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, num numeric, f4 float4, f8 float8,
                 t text, vc varchar(10), bp char(5), nm name, u uuid, d date, ts timestamp, tstz timestamptz,
                 j json, jb jsonb, arr int[], tarr text[], pair audit_pair, mood audit_mood, pos audit_positive,
                 ip inet, iv interval, by bytea, tm time, money_col money, touch int NOT NULL DEFAULT 0)",
        )
        .unwrap();
        Spi::run("SELECT tenancy.enable_audit('audit_types')").unwrap();
        Spi::run(
            r#"INSERT INTO audit_types VALUES
             (1, true, 1, -2, 3, 1.50, 0.1, 0.30000000000000004, 'he said "hi"\n', 'v', 'ab', 'nm',
              'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-03-29', '2026-03-29 01:30:00.5', '2026-03-29 01:30:00.123456+02',
              '{"x": [1, 2.0, "y"]}', '{"k": {"z": null}}', '{1,2,3}', '{a,NULL,"c d"}', '(1,x)', 'ok', 3.25,
              '10.1.2.3/24', '1 day 2 hours', '\xdeadbeef', '13:14:15', 12.34, 0),
             (2, false, -32768, 2147483647, -9223372036854775808, 'NaN', 'Infinity', '-Infinity',
              '', '', '', '', '00000000-0000-0000-0000-000000000000', 'infinity', '-infinity', 'infinity',
              'null', '"just a string"', '{}', '{}', '(,)', 'sad', 1e-20,
              '::1', '-1 mon', '', '00:00:00', -1, 0),
             (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0),
             (4, true, 0, 0, 0, -0.0001, -0.0, 1e300, 'ünïcødé ✓', 'x', 'x', 'x',
              'ffffffff-ffff-ffff-ffff-ffffffffffff', '0001-01-01', '9999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999+00',
              '[1, {"a": 2}]', '5', '{{1,2},{3,4}}', '{""}', '(2,"")', 'ok', 123456789012345678901234567890.123456789,
              '2001:db8::1', '0', '\x00', '23:59:59.999999', 0, 0),
             (5, false, 7, 7, 7, 7, 1.5e-7, 5e-324, 'x', 'x', 'x', 'x',
              'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '1999-01-08', '1900-01-01 00:00:00', '2026-11-22 10:00:00-08',
              '1.5', 'true', '{-1}', '{x}', NULL, NULL, 0.5,
              NULL, NULL, NULL, NULL, NULL, 0)"#,
        )
        .unwrap();
        for zone in ["UTC", "Asia/Kolkata", "America/New_York", "UTC+3"] {
            Spi::run(&format!("SET TimeZone = '{zone}'")).unwrap();
            Spi::run("UPDATE audit_types SET touch = touch + 1").unwrap();
            let mismatches = Spi::get_one::<i64>(
                "SELECT count(*) FROM tenancy.audit_log a JOIN audit_types r ON a.record_key = jsonb_build_object('id', r.id)
                  WHERE a.op = 'UPDATE' AND a.logged_at = (SELECT max(logged_at) FROM tenancy.audit_log)
                    AND (a.new_row::text IS DISTINCT FROM to_jsonb(r)::text OR a.new_row IS DISTINCT FROM to_jsonb(r))",
            )
            .unwrap()
            .unwrap();
            let checked = Spi::get_one::<i64>(
                "SELECT count(*) FROM tenancy.audit_log WHERE logged_at = (SELECT max(logged_at) FROM tenancy.audit_log)",
            )
            .unwrap()
            .unwrap();
            assert_eq!(checked, 5, "every row audited in {zone}");
            assert_eq!(mismatches, 0, "audit rows differ from to_jsonb in {zone}");
        }
        // The INSERT rows as well (written in the session's zone at the time).
        Spi::run("RESET TimeZone").unwrap();
    }

    /// A float8 column fed many values: the audit row holds what to_jsonb holds.
    #[pg_test]
    fn audit_floats_match_to_jsonb() {
        Spi::run("CREATE TABLE audit_floats (id int PRIMARY KEY, f8 float8, f4 float4)").unwrap();
        Spi::run("SELECT tenancy.enable_audit('audit_floats')").unwrap();
        Spi::run(
            "INSERT INTO audit_floats
             SELECT i, (random() - 0.5) * 10 ^ (random() * 40 - 20), ((random() - 0.5) * 10 ^ (random() * 20 - 10))::float4
               FROM generate_series(1, 2000) i",
        )
        .unwrap();
        let mismatches = Spi::get_one::<i64>(
            "SELECT count(*) FROM tenancy.audit_log a JOIN audit_floats t ON a.record_key = jsonb_build_object('id', t.id)
              WHERE a.table_name = 'public.audit_floats' AND a.new_row::text IS DISTINCT FROM to_jsonb(t)::text",
        )
        .unwrap()
        .unwrap();
        assert_eq!(mismatches, 0);
    }
}
