-- Masking: functions on every kind of input, rules, masked views, what a
-- masked role can and cannot reach, PII detection, static anonymization.
SET TimeZone = 'UTC';

-- Functions: ordinary, empty, malformed, non-ASCII and NULL input.
SELECT v AS input, tenancy.mask_email(v) AS email
  FROM unnest(ARRAY['john.doe@example.com', 'ab@x.org', 'a@x.org', 'no-at-sign', '', '@only.domain',
                    'a@b@c.com', 'élodie.dupont@exemple.fr', NULL]) v;
SELECT v AS input, tenancy.mask_phone(v) AS phone, tenancy.mask_card(v) AS card
  FROM unnest(ARRAY['+1 (555) 123-4567', '4111 1111 1111 1111', '4111-1111-1111-1111', '123',
                    'call me maybe', '555-1234 ext. 12', '', '０１２３', NULL]) v;
SELECT v AS input, tenancy.mask_name(v) AS name
  FROM unnest(ARRAY['John Doe', '  Jean-Luc   Picard ', 'Élodie Ñúñez', '李小龙', 'x', '', NULL]) v;
SELECT v AS input, tenancy.mask_ip(v) AS ip
  FROM unnest(ARRAY['192.168.7.41', '10.0.0.0/8', '2001:db8:abcd:12::1', '::1', NULL]::inet[]) v;
SELECT tenancy.mask_partial('4111111111111111', 4, 4) AS card,
       tenancy.mask_partial('secret', 1, 1, '#') AS fill,
       tenancy.mask_partial('ab', 1, 1) AS would_reveal_all,
       tenancy.mask_partial('ñandú', 1, 0, '·') AS non_ascii,
       tenancy.mask_partial('abc', -3, 99) AS bad_counts,
       tenancy.mask_partial(NULL, 1, 1) AS null_in;
SELECT tenancy.redact('anything') AS redacted, tenancy.redact('') AS empty, tenancy.redact(NULL) AS null_in;
SELECT tenancy.generalize_date('2024-02-29 23:30:00+00', p) AS utc,
       tenancy.generalize_date('2024-03-01 01:30:00+02', p) AS other_zone
  FROM unnest(ARRAY['day', 'month', 'year']) p;
SELECT tenancy.generalize_date('infinity', 'year') AS infinite, tenancy.generalize_date(NULL, 'year') AS null_in;
SELECT tenancy.generalize_date(now(), 'week');
\echo :LAST_ERROR_SQLSTATE
-- The functions are marked as they are.
SELECT p.proname, p.provolatile, p.proisstrict, p.proleakproof, p.proparallel
  FROM pg_proc p WHERE p.pronamespace = 'tenancy'::regnamespace
   AND p.proname IN ('mask_email', 'mask_phone', 'mask_card', 'mask_name', 'mask_ip', 'mask_partial',
                     'redact', 'generalize_date', 'pseudonymize')
 ORDER BY 1;

-- pseudonymize: a keyed token, the same for the same value, never the
-- value. With a known key (set here for the test), tokens are known.
UPDATE tenancy.masking_key SET key = decode(repeat('0b', 32), 'hex');
SELECT v, tenancy.pseudonymize(v) AS token
  FROM unnest(ARRAY['alice', 'alice', 'bob', '', NULL]) v;
SELECT length(tenancy.pseudonymize('x')) AS hex_digits;
-- A different key gives different tokens.
UPDATE tenancy.masking_key SET key = decode(repeat('0c', 32), 'hex');
SELECT tenancy.pseudonymize('alice') AS token_under_another_key;

-- Rules: a closed vocabulary, checked against the column's type.
SELECT tenancy.create_tenant('mask-a', 'Mask A', id => 'aaaaaaaa-0000-0000-0000-0000000000ad');
SELECT tenancy.create_tenant('mask-b', 'Mask B', id => 'bbbbbbbb-0000-0000-0000-0000000000bd');
CREATE TABLE customers (
    id        int PRIMARY KEY,
    tenant_id uuid NOT NULL,
    email     text,
    phone     varchar(30),
    full_name text,
    last_ip   inet,
    born      date,
    card      text,
    notes     text,
    "Odd ""Name""" text
);
INSERT INTO customers VALUES
    (1, 'aaaaaaaa-0000-0000-0000-0000000000ad', 'john.doe@example.com', '+1 (555) 123-4567', 'John Doe',
        '10.1.2.3', '1980-05-17', '4111 1111 1111 1111', 'likes cats', 'odd'),
    (2, 'aaaaaaaa-0000-0000-0000-0000000000ad', 'ann@example.org', '555-0000', 'Ann Lee',
        '10.1.2.4', '1990-12-31', '5500 0000 0000 0004', 'likes dogs', 'odder'),
    (3, 'bbbbbbbb-0000-0000-0000-0000000000bd', 'bob@globex.test', '+44 20 7946 0958', 'Bob Smith',
        '2001:db8::7', '1975-01-01', '3782 822463 10005', 'b''s notes', 'oddest');
SELECT tenancy.enable_isolation('customers');
CREATE INDEX ON customers (tenant_id);

-- What detect_pii suggests, from names and from sampled values.
CREATE TABLE contacts (id int PRIMARY KEY, reach text, misc text);
INSERT INTO contacts VALUES (1, 'a@b.co', 'hello'), (2, 'c@d.org', '4111 1111 1111 1111'), (3, 'e@f.net', '5500 0000 0000 0004');
SELECT table_name, column_name, suggested_rule, reason, current_rule
  FROM tenancy.detect_pii() WHERE table_name::text IN ('customers', 'contacts') ORDER BY table_name::text, column_name;

SELECT tenancy.set_masking_rule('customers', 'email', 'email');
SELECT tenancy.set_masking_rule('customers', 'phone', 'phone');
SELECT tenancy.set_masking_rule('customers', 'full_name', 'name');
SELECT tenancy.set_masking_rule('customers', 'last_ip', 'ip', 'internal');
SELECT tenancy.set_masking_rule('customers', 'born', 'generalize(year)');
SELECT tenancy.set_masking_rule('customers', 'card', 'partial(0,4)', 'restricted');
SELECT tenancy.set_masking_rule('customers', 'notes', 'pseudonymize');
SELECT tenancy.set_masking_rule('customers', 'Odd "Name"', 'redact');
SELECT tenancy.set_masking_rule('customers', 'id', 'none', 'public');
SELECT tbl, col, rule, classification FROM tenancy.masking_rules ORDER BY col;
-- Errors: unknown rule, arbitrary SQL, unknown column, wrong type, bad classification, NULLs.
SELECT tenancy.set_masking_rule('customers', 'email', 'md5');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_masking_rule('customers', 'email', 'partial(1,1); DROP TABLE customers');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_masking_rule('customers', 'nope', 'email');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_masking_rule('customers', 'born', 'email');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_masking_rule('customers', 'email', 'ip');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_masking_rule('customers', 'email', 'email', 'secret');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_masking_rule('customers', 'email', NULL);
\echo :LAST_ERROR_SQLSTATE

-- The masked view: same columns and types, masked values, tenant isolation kept.
SELECT tenancy.create_masked_view('customers');
\d tenancy_masked.customers
SELECT reloptions FROM pg_class WHERE oid = 'tenancy_masked.customers'::regclass;
SELECT obj_description('tenancy_masked'::regnamespace, 'pg_namespace') AS schema_comment;
SELECT * FROM tenancy_masked.customers ORDER BY id;              -- no tenant: no rows
SELECT tenancy.set_tenant('aaaaaaaa-0000-0000-0000-0000000000ad');
SELECT * FROM tenancy_masked.customers ORDER BY id;
SELECT tenancy.clear_tenant();
-- Rules change; running it again replaces the view.
SELECT tenancy.set_masking_rule('customers', 'notes', 'null');
SELECT tenancy.create_masked_view('customers');
SELECT tenancy.set_tenant('bbbbbbbb-0000-0000-0000-0000000000bd');
SELECT id, notes, card FROM tenancy_masked.customers;
SELECT tenancy.clear_tenant();

-- A masked role reads the view, and nothing underneath, by any path.
CREATE ROLE mask_reader;
GRANT SELECT ON customers TO PUBLIC;
SELECT tenancy.grant_masked_access('mask_reader');               -- PUBLIC can still read the table
\echo :LAST_ERROR_SQLSTATE
REVOKE SELECT ON customers FROM PUBLIC;
GRANT SELECT ON customers TO mask_reader;                        -- revoked by grant_masked_access
SELECT tenancy.grant_masked_access('mask_reader');
-- Other ways around the masks count too: a view of the table (it reads with
-- its owner's rights), a view of that view, a partition of a masked table.
-- The role's own grants on them are revoked; any other path is refused.
CREATE VIEW customers_raw AS SELECT id, email FROM customers;
CREATE VIEW customers_raw_again AS SELECT * FROM customers_raw;
GRANT SELECT ON customers_raw_again TO PUBLIC;
SELECT tenancy.grant_masked_access('mask_reader');
\echo :LAST_ERROR_SQLSTATE
DROP VIEW customers_raw_again, customers_raw;
CREATE TABLE parted (id int, email text) PARTITION BY RANGE (id);
CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
SELECT tenancy.set_masking_rule('parted', 'email', 'email');
GRANT SELECT ON parted_low TO mask_reader;
SELECT tenancy.grant_masked_access('mask_reader');
SELECT has_table_privilege('mask_reader', 'parted_low', 'SELECT') AS reads_partition;
DROP TABLE parted;
SELECT tenancy.grant_masked_access('mask_reader');
SELECT has_table_privilege('mask_reader', 'customers', 'SELECT') AS reads_table,
       has_table_privilege('mask_reader', 'tenancy_masked.customers', 'SELECT') AS reads_view;
ANALYZE customers;
CREATE FUNCTION leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
$$ BEGIN RAISE NOTICE 'leak saw: %', $1; RETURN true; END $$;
-- The audit log keeps unmasked row images: a masked role reads none of it.
SELECT tenancy.enable_audit('customers');
UPDATE customers SET id = id + 100 WHERE id = 1;
UPDATE customers SET id = id - 100 WHERE id = 101;
SELECT count(*) AS audit_rows, bool_and(new_row->>'email' = 'john.doe@example.com') AS raw_email
  FROM tenancy.audit_log WHERE table_name = 'public.customers';
SET ROLE mask_reader;
SELECT tenancy.set_tenant('aaaaaaaa-0000-0000-0000-0000000000ad');
SELECT count(*) AS audit_rows_visible FROM tenancy.audit_log;
SELECT count(*) AS history_visible FROM tenancy.row_history('customers', '{"id": 1}');
SELECT id, email, card FROM tenancy_masked.customers ORDER BY id;
-- A cheap function in WHERE runs after the view's tenant filter and sees masked values only.
SELECT id FROM tenancy_masked.customers WHERE leak(email) ORDER BY id;
SELECT * FROM customers;
\echo :LAST_ERROR_SQLSTATE
COPY customers TO STDOUT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS stats_rows_visible FROM pg_stats WHERE tablename = 'customers';
SELECT * FROM tenancy.masking_key;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM customers;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT tenancy.set_masking_rule('customers', 'email', 'none');  -- only the table owner
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.grant_masked_access('mask_reader');              -- administrators only
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.clear_tenant();
RESET ROLE;
-- Superusers cannot be masked.
SELECT tenancy.grant_masked_access('postgres');
\echo :LAST_ERROR_SQLSTATE

-- Static anonymization: one tenant's rows, rewritten in place, in batches.
SELECT tenancy.anonymize_table('customers', 'bbbbbbbb-0000-0000-0000-0000000000bd', batch_size => 1);
SELECT id, email, phone, full_name, last_ip, born, card, notes, "Odd ""Name""" FROM customers ORDER BY id;
SELECT tenancy.anonymize_table('customers', batch_size => 1);
SELECT id, email, full_name, card FROM customers ORDER BY id;
SELECT tenancy.anonymize_table('contacts');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.anonymize_table('customers', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.clear_masking_rule('customers', 'id');
SELECT tenancy.clear_masking_rule('customers', 'id');            -- NOTICE

-- Dropping a table drops its rules and its masked view's registration.
DROP TABLE contacts;
DROP VIEW tenancy_masked.customers;
SELECT count(*) AS masked_views_left FROM tenancy.masked_views;
DROP TABLE customers;
SELECT count(*) AS rules_left FROM tenancy.masking_rules;
DROP FUNCTION leak(text);
DROP OWNED BY mask_reader;
DROP ROLE mask_reader;
