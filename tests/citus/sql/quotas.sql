-- Quotas on a Citus coordinator: 16 clients at once consume from one
-- tenant's limit; exactly the limit is granted, not one call more.
\getenv pgbench PGBENCH
\getenv consume_script CONSUME_SCRIPT
SET client_min_messages = warning;
SELECT tenancy.define_resource('api_calls', 'month');
SELECT tenancy.set_plan_limit('free', 'api_calls', 1000);
SELECT tenancy.create_tenant('quota_co', 'Quota Co', 'free', '00000000-0000-4000-8000-0000000000a1');
-- Each call that gets a unit leaves a row in a distributed table, in the
-- same transaction: what was granted is what landed on the workers.
CREATE TABLE granted (tenant_id uuid NOT NULL, n bigserial, PRIMARY KEY (tenant_id, n));
SELECT create_distributed_table('granted', 'tenant_id');
\! $PGBENCH -n -c 16 -j 2 -t 100 -f $CONSUME_SCRIPT >/dev/null
SELECT count(*) AS granted_calls FROM granted;
SELECT used, quota_limit, used <= quota_limit AS within FROM tenancy.quota_status()
 WHERE tenant_id = '00000000-0000-4000-8000-0000000000a1' AND resource = 'api_calls';
DROP TABLE granted;

-- Not supported on Citus tables yet, refused with nothing half done: row
-- quotas (their counting triggers would fire on the workers) and audit
-- (its log would land on the workers; issue 18).
SELECT tenancy.define_resource('stored_orders');
\set VERBOSITY sqlstate
SELECT tenancy.enforce_row_quota('orders', 'stored_orders');
SELECT tenancy.enable_audit('orders');
\set VERBOSITY default
SELECT count(*) AS tenancy_triggers_on_orders FROM pg_trigger
 WHERE tgrelid = 'orders'::regclass AND tgname LIKE 'tenancy%';
SELECT count(*) AS row_quotas FROM tenancy.row_quotas;
SELECT count(*) AS audited_tables FROM tenancy.audit_config;
