-- Audit triggers: what is captured, for whom, and who may read or change it.
SET TimeZone = 'UTC';
SELECT tenancy.create_tenant('audit-a', 'Audit A', id => 'aaaaaaaa-0000-0000-0000-00000000000a');
SELECT tenancy.create_tenant('audit-b', 'Audit B', id => 'bbbbbbbb-0000-0000-0000-00000000000b');

CREATE TABLE accounts (
    id            bigint PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    email         text,
    balance       numeric(10,2) NOT NULL DEFAULT 0,
    password_hash text,
    opened        date DEFAULT '2026-01-15',
    email_domain  text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED
);
SELECT tenancy.register_table('accounts');
SELECT tenancy.enable_audit('accounts', exclude_columns => '{password_hash}');
-- Twice is a NOTICE; new exclusions are reported and applied.
SELECT tenancy.enable_audit('accounts', exclude_columns => '{password_hash}');
SELECT tenancy.enable_audit('accounts', exclude_columns => '{password_hash, opened}');
SELECT tenancy.enable_audit('accounts', exclude_columns => '{password_hash}');
SELECT table_name, exclude_columns, triggers_enabled FROM tenancy.audited_tables;
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'accounts'::regclass ORDER BY 1;

-- Every operation, attributed to the row's tenant and to the actor.
SELECT tenancy.set_actor('user:alice');
INSERT INTO accounts (id, tenant_id, email, balance, password_hash) VALUES
    (1, 'aaaaaaaa-0000-0000-0000-00000000000a', 'ann@acme.test', 10.50, 'h1'),
    (2, 'bbbbbbbb-0000-0000-0000-00000000000b', 'bob@globex.test', 0, 'h2');
UPDATE accounts SET balance = balance + 1, email = 'ann@acme2.test' WHERE id = 1;
-- Changing only an excluded column, or nothing, writes no audit row.
UPDATE accounts SET password_hash = 'h3' WHERE id = 1;
UPDATE accounts SET balance = balance WHERE id = 2;
DELETE FROM accounts WHERE id = 2;
-- TRUNCATE removes every tenant's rows, whoever runs it: no tenant owns that row.
SELECT tenancy.set_tenant('aaaaaaaa-0000-0000-0000-00000000000a');
TRUNCATE accounts;
SELECT tenancy.clear_tenant();
SELECT t.slug AS tenant, a.table_name, a.op, a.record_key, a.changed_cols, a.actor
  FROM tenancy.audit_log a LEFT JOIN tenancy.tenants t ON t.id = a.tenant_id
 WHERE a.table_name = 'public.accounts' ORDER BY a.logged_at, a.id;
SELECT a.op, a.old_row, a.new_row
  FROM tenancy.audit_log a WHERE a.table_name = 'public.accounts' ORDER BY a.logged_at, a.id;
-- Context of the change: transaction, client, application.
SELECT count(DISTINCT txid) = 4 AS one_txid_per_statement, bool_and(txid > 0) AS txids,
       bool_and(application_name IS NOT NULL) AS application_names, bool_and(logged_at <= clock_timestamp()) AS times
  FROM tenancy.audit_log WHERE table_name = 'public.accounts';

-- A table that is not registered: the tenant is the session's.
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT tenancy.enable_audit('notes');
INSERT INTO notes VALUES (1, 'no tenant set');
SELECT tenancy.set_tenant('bbbbbbbb-0000-0000-0000-00000000000b');
INSERT INTO notes VALUES (2, 'as tenant b');
SELECT tenancy.clear_tenant();
SELECT t.slug AS tenant, a.new_row FROM tenancy.audit_log a LEFT JOIN tenancy.tenants t ON t.id = a.tenant_id
 WHERE a.table_name = 'public.notes' ORDER BY a.id;

-- Upserts record the insert or the update that happened.
INSERT INTO notes VALUES (2, 'updated by upsert'), (3, 'inserted by upsert')
    ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body;
INSERT INTO notes VALUES (3, 'ignored') ON CONFLICT DO NOTHING;
SELECT a.op, a.record_key, a.old_row, a.new_row FROM tenancy.audit_log a
 WHERE a.table_name = 'public.notes' AND a.record_key->>'id' IN ('2', '3') ORDER BY a.logged_at, a.id;

-- History of one record, oldest first.
SELECT op, changed_cols, new_row->>'body' AS body FROM tenancy.row_history('notes', '{"id": 2}');
-- A key change: the UPDATE keeps the old key too, and ends the old key's
-- history as it starts the new one's.
UPDATE notes SET id = 20 WHERE id = 2;
SELECT op, record_key, old_record_key, changed_cols FROM tenancy.row_history('notes', '{"id": 2}');
UPDATE notes SET body = 'after the key change' WHERE id = 20;
SELECT op, record_key, old_record_key, new_row->>'body' AS body FROM tenancy.row_history('notes', '{"id": 20}');

-- A wide table (over 100 columns): every column, byte for byte what to_jsonb says.
SELECT format('CREATE TABLE wide (id int PRIMARY KEY, %s)',
              string_agg(format('c%s int DEFAULT %s', i, i), ', ')) FROM generate_series(1, 120) i \gexec
SELECT tenancy.enable_audit('wide');
INSERT INTO wide (id) VALUES (1);
UPDATE wide SET c77 = -77;
SELECT a.op, (SELECT count(*) FROM jsonb_object_keys(a.new_row)) AS keys,
       a.new_row = CASE a.op WHEN 'INSERT' THEN jsonb_set(to_jsonb(w), '{c77}', '77') ELSE to_jsonb(w) END AS is_to_jsonb,
       a.changed_cols, a.old_row
  FROM tenancy.audit_log a, wide w WHERE a.table_name = 'public.wide' ORDER BY a.id;

-- A partitioned table: writes through the parent and straight into a partition
-- are each audited once, and partitions created later are audited too.
CREATE TABLE events (id bigint, at date NOT NULL, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT tenancy.enable_audit('events');
INSERT INTO events VALUES (1, '2026-05-01', 'via parent');
INSERT INTO events_2026 VALUES (2, '2026-06-01', 'into the partition');
UPDATE events SET what = what || '!' WHERE id = 1;
SET tenancy.now_override = '2027-03-10 00:00:00+00';
SELECT tenancy.create_partitioned('events', 'at', '1 month', premake => 1, default_partition => false);
RESET tenancy.now_override;
INSERT INTO events VALUES (3, '2027-03-15', 'in a new partition');
SELECT a.table_name, a.op, a.record_key, a.new_row->>'what' AS what FROM tenancy.audit_log a
 WHERE a.table_name LIKE 'public.events%' ORDER BY a.id;
SELECT c.relname, count(t.tgname) AS audit_triggers FROM pg_class c
  LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname LIKE 'tenancy\_audit\_%'
 WHERE c.relname LIKE 'events%' AND c.relkind IN ('r', 'p') GROUP BY 1 ORDER BY 1;
-- row_history finds a record's versions whichever way they were written, and
-- exclusions hold for writes straight into a partition too.
SELECT op, table_name, new_row->>'what' AS what FROM tenancy.row_history('events', '{"id": 2, "at": "2026-06-01"}');
SELECT tenancy.enable_audit('events', '{what}');
INSERT INTO events_2026 VALUES (4, '2026-07-01', 'left out');
SELECT table_name, new_row ? 'what' AS has_excluded_column
  FROM tenancy.row_history('events', '{"id": 4, "at": "2026-07-01"}');
SELECT tenancy.enable_audit('events');
-- Partitions added by hand are audited from their first write: one created as
-- a partition, and a table of an ordinary role's attached to the tree.
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE ROLE audit_owner;
CREATE TABLE events_2024 (id bigint NOT NULL, at date NOT NULL, what text);
ALTER TABLE events_2024 OWNER TO audit_owner;
GRANT CREATE ON SCHEMA public TO audit_owner;
ALTER TABLE events OWNER TO audit_owner;
SET ROLE audit_owner;
ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO events_2024 VALUES (6, '2024-05-01', 'attached by its owner');
RESET ROLE;
INSERT INTO events_2025 VALUES (5, '2025-05-01', 'in a hand-made partition');
SELECT table_name, op, new_row->>'what' AS what FROM tenancy.audit_log
 WHERE table_name IN ('public.events_2024', 'public.events_2025') ORDER BY id;

-- Without a primary key auditing is refused; a replica identity index will do.
CREATE TABLE keyless (code text NOT NULL, v int);
SELECT tenancy.enable_audit('keyless');
\echo :LAST_ERROR_SQLSTATE
CREATE UNIQUE INDEX keyless_code ON keyless (code);
ALTER TABLE keyless REPLICA IDENTITY USING INDEX keyless_code;
SELECT tenancy.enable_audit('keyless');
INSERT INTO keyless VALUES ('k1', 1);
SELECT record_key FROM tenancy.audit_log WHERE table_name = 'public.keyless';

-- Errors.
SELECT tenancy.enable_audit('no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_audit('notes', exclude_columns => '{nope}');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_audit(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_audit('notes', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_audit('notes', '{NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_audit('tenancy.tenants');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW notes_view AS SELECT * FROM notes;
SELECT tenancy.enable_audit('notes_view');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.disable_audit(NULL);
\echo :LAST_ERROR_SQLSTATE

-- Application roles: their own tenant's rows only, and no way to change the log.
CREATE ROLE audit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO audit_app;
SET ROLE audit_app;
SELECT count(*) AS visible_without_tenant FROM tenancy.audit_log;
SELECT tenancy.set_tenant('aaaaaaaa-0000-0000-0000-00000000000a');
SELECT op, table_name FROM tenancy.audit_log ORDER BY logged_at, id;
SELECT count(*) AS visible_in_a_partition FROM tenancy.audit_log_default;
INSERT INTO tenancy.audit_log (logged_at, table_name, op, txid) VALUES (now(), 'fake', 'INSERT', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE tenancy.audit_log SET actor = 'someone else';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.audit_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE tenancy.audit_log;
\echo :LAST_ERROR_SQLSTATE
-- (A partition by name: psql 17 no longer sets LAST_ERROR_SQLSTATE for
-- statements run by \gexec.)
SELECT c.oid::regclass AS audit_partition FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'tenancy.audit_log'::regclass ORDER BY 1 LIMIT 1 \gset
DELETE FROM :audit_partition;
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.seal_audit();
\echo :LAST_ERROR_SQLSTATE
-- Nor by attaching the audit trigger to a table of its own (forged rows).
CREATE TEMP TABLE forge (id int PRIMARY KEY, tenant_id uuid);
CREATE TRIGGER forge AFTER INSERT ON forge REFERENCING NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._audit_statement();
\echo :LAST_ERROR_SQLSTATE
DROP TABLE forge;
-- The application's own writes are audited under its tenant, with its actor.
SELECT tenancy.set_actor('user:app');
INSERT INTO accounts (id, tenant_id, email) VALUES (10, 'aaaaaaaa-0000-0000-0000-00000000000a', 'app@acme.test');
SELECT op, actor, new_row->>'email' AS email FROM tenancy.audit_log WHERE record_key = '{"id": 10}';
RESET ROLE;
SELECT tenancy.clear_tenant();

-- Even a grant does not open the log (an operator's mistake): every write,
-- on the parent, a partition or a chain table, is 42501.
GRANT INSERT, UPDATE, DELETE, TRUNCATE ON tenancy.audit_log, tenancy.audit_chain, tenancy.audit_chain_heads,
    tenancy.audit_seals, tenancy.audit_expiry TO audit_app;
SELECT format('GRANT INSERT, UPDATE, DELETE, TRUNCATE ON %s TO audit_app', c.oid::regclass)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'tenancy.audit_log'::regclass \gexec
SET ROLE audit_app;
SELECT tenancy.set_tenant('aaaaaaaa-0000-0000-0000-00000000000a');
TRUNCATE tenancy.audit_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE :audit_partition;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.audit_log;
\echo :LAST_ERROR_SQLSTATE
UPDATE tenancy.audit_log SET actor = 'someone else';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.audit_log (logged_at, table_name, op, txid) VALUES (now(), 'fake', 'INSERT', 1);
\echo :LAST_ERROR_SQLSTATE
DELETE FROM :audit_partition;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE tenancy.audit_chain;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.audit_chain_heads;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.audit_seals (system_identifier, below_txid, rows_sealed) VALUES (1, 1, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) > 0 AS rows_still_there FROM tenancy.audit_log;
RESET ROLE;
SELECT tenancy.clear_tenant();
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tenancy.audit_log, tenancy.audit_chain, tenancy.audit_chain_heads,
    tenancy.audit_seals, tenancy.audit_expiry FROM audit_app;
SELECT format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM audit_app', c.oid::regclass)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'tenancy.audit_log'::regclass \gexec
-- A superuser is refused too, unless it switches the guards off (replication
-- mode skips ordinary triggers), which verification below catches.
DELETE FROM tenancy.audit_log WHERE false;
\echo :LAST_ERROR_SQLSTATE

-- Sealing chains the rows per tenant; verification recomputes every link.
SELECT tenancy.seal_audit() > 0 AS sealed;
SELECT tenancy.seal_audit() AS sealed_again;
SELECT t.slug AS tenant, v.rows_checked > 0 AS checked, v.ok, v.first_bad_id
  FROM tenancy.verify_audit() v LEFT JOIN tenancy.tenants t ON t.id = v.tenant_id ORDER BY 1;
-- A superuser changes a sealed row: the first bad link is that row.
SELECT id AS tampered_id FROM tenancy.audit_log
 WHERE table_name = 'public.accounts' AND record_key = '{"id": 1}' AND op = 'UPDATE' \gset
SET session_replication_role = replica;
UPDATE tenancy.audit_log SET new_row = jsonb_set(new_row, '{balance}', '1000000') WHERE id = :tampered_id;
SELECT ok, first_bad_id = :tampered_id AS finds_the_update
  FROM tenancy.verify_audit('aaaaaaaa-0000-0000-0000-00000000000a');
UPDATE tenancy.audit_log SET new_row = jsonb_set(new_row, '{balance}', '11.50') WHERE id = :tampered_id;
SELECT ok FROM tenancy.verify_audit('aaaaaaaa-0000-0000-0000-00000000000a');
-- ... deletes one: the missing link is found.
SELECT id AS deleted_id FROM tenancy.audit_log WHERE table_name = 'public.notes' AND tenant_id IS NULL ORDER BY id LIMIT 1 \gset
DELETE FROM tenancy.audit_log WHERE id = :deleted_id;
RESET session_replication_role;
SELECT tenant_id IS NULL AS no_tenant_chain, ok, first_bad_id = :deleted_id AS finds_the_delete
  FROM tenancy.verify_audit('00000000-0000-0000-0000-000000000000');
-- ... or slips a forged row in below the sealed horizon: found as well.
INSERT INTO tenancy.audit_log (logged_at, tenant_id, table_name, op, txid)
VALUES (now(), 'bbbbbbbb-0000-0000-0000-00000000000b', 'public.accounts', 'DELETE', 3) RETURNING id AS forged_id \gset
SELECT ok, first_bad_id = :forged_id AS finds_the_forgery
  FROM tenancy.verify_audit('bbbbbbbb-0000-0000-0000-00000000000b');

-- Partition retention retires sealed links (recorded in audit_expiry), and
-- verification carries on past them; a partition dropped by hand is missing links.
INSERT INTO tenancy.audit_log (logged_at, tenant_id, table_name, op, txid)
SELECT t, 'cccccccc-0000-0000-0000-00000000000c', 'public.old', 'INSERT', txid_current()
  FROM unnest(ARRAY['2020-01-10 00:00:00+00', '2020-01-20 00:00:00+00', '2020-03-10 00:00:00+00']::timestamptz[]) t;
SELECT action, partition FROM tenancy.run_maintenance('tenancy.audit_log') WHERE action = 'relocated' ORDER BY partition;
SELECT tenancy.seal_audit() >= 3 AS sealed;
SELECT rows_checked, ok FROM tenancy.verify_audit('cccccccc-0000-0000-0000-00000000000c');
SET tenancy.now_override = '2020-03-15 00:00:00+00';
UPDATE tenancy.partition_sets SET retention = '1 month' WHERE parent = 'tenancy.audit_log'::regclass;
SELECT action, partition FROM tenancy.run_maintenance('tenancy.audit_log') ORDER BY action, partition;
RESET tenancy.now_override;
UPDATE tenancy.partition_sets SET retention = NULL WHERE parent = 'tenancy.audit_log'::regclass;
SELECT mode, partitions, expired_before = '2020-02-01 00:00:00+00' AS expired_before_february FROM tenancy.audit_expiry;
SELECT rows_checked, ok FROM tenancy.verify_audit('cccccccc-0000-0000-0000-00000000000c');
SELECT id AS march_id FROM tenancy.audit_log WHERE tenant_id = 'cccccccc-0000-0000-0000-00000000000c' \gset
DROP TABLE tenancy.audit_log_p20200301;
SELECT ok, first_bad_id = :march_id AS finds_the_dropped_partition
  FROM tenancy.verify_audit('cccccccc-0000-0000-0000-00000000000c');
DROP TABLE tenancy.audit_log_p20200401, tenancy.audit_log_p20200501;

-- Disabling stops the capture and keeps what was logged.
SELECT tenancy.disable_audit('notes');
SELECT tenancy.disable_audit('notes');
INSERT INTO notes VALUES (9, 'not audited');
SELECT count(*) AS notes_rows_logged FROM tenancy.audit_log WHERE table_name = 'public.notes' AND record_key = '{"id": 9}';
-- Dropping an audited table forgets its settings.
DROP TABLE keyless;
SELECT table_name FROM tenancy.audited_tables ORDER BY table_name::text;

DROP TABLE accounts, notes, wide, events CASCADE;
DROP ROLE audit_app;
DROP OWNED BY audit_owner;
DROP ROLE audit_owner;
