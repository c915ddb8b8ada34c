-- Usage: request-rate limits (throttle), token buckets in shared memory,
-- rates per plan and per tenant (pg_tenancy is preloaded here, so the
-- buckets exist); governed settings applied by set_tenant.
INSERT INTO tenancy.plans (name) VALUES ('rl-basic'), ('rl-pro');
SELECT tenancy.create_tenant('rl-a', 'Rate A', 'rl-basic', id => 'aaaaaaaa-0000-0000-0000-0000000000d1') AS a \gset
SELECT tenancy.create_tenant('rl-b', 'Rate B', 'rl-basic', id => 'bbbbbbbb-0000-0000-0000-0000000000d2') AS b \gset

-- No rate: every call goes through.
SELECT bool_and(tenancy.throttle(:'a', 'api')) AS unlimited FROM generate_series(1, 100);

-- A plan's rate: a bucket of 5 at 0.001 per second (so nothing refills
-- during the test): 5 calls go, the rest wait. Each tenant has its own
-- bucket, and each resource.
SELECT tenancy.set_throttle('api', 0.001, 5, plan => 'rl-basic');
SELECT count(*) FILTER (WHERE tenancy.throttle(:'a', 'api')) AS a_admitted FROM generate_series(1, 20);
SELECT count(*) FILTER (WHERE tenancy.throttle(:'b', 'api')) AS b_admitted FROM generate_series(1, 20);
SELECT tenancy.throttle(:'a', 'export') AS other_resource;
-- Costs: a call costing more than is left waits; one costing 0 goes.
SELECT tenancy.throttle(:'a', 'api', 0) AS free_call, tenancy.throttle(:'a', 'api', 2) AS costly_call;

-- throttle_or_raise: 53400 with the rate and the wait.
SELECT tenancy.throttle_or_raise(:'a', 'api');

-- A tenant's own rate wins over its plan's, at once (every backend reads
-- the rates again), and so does a plan change.
SELECT tenancy.set_throttle('api', 1000, 3, tenant => :'a');
SELECT tenancy.reset_throttles();
SELECT count(*) FILTER (WHERE tenancy.throttle(:'a', 'api')) AS a_own_rate FROM generate_series(1, 3);
SELECT tenancy.clear_throttle('api', tenant => :'a') AS cleared, tenancy.clear_throttle('api', tenant => :'a') AS again;
SELECT tenancy.set_throttle('api', 0.001, 1, plan => 'rl-pro');
UPDATE tenancy.tenants SET plan = 'rl-pro' WHERE id = :'b';
SELECT tenancy.reset_throttles();
SELECT count(*) FILTER (WHERE tenancy.throttle(:'b', 'api')) AS b_on_pro FROM generate_series(1, 5);
SELECT resource, plan, tenant_id IS NOT NULL AS for_tenant, rate_per_second, burst
  FROM tenancy.throttle_rates ORDER BY resource, plan;

-- Errors.
\set VERBOSITY sqlstate
SELECT tenancy.throttle_or_raise(:'b', 'api');
SELECT tenancy.throttle('00000000-0000-0000-0000-0000000000ff', 'api');
SELECT tenancy.throttle(:'a', 'api', -1);
SELECT tenancy.throttle(NULL, 'api');
SELECT tenancy.set_throttle('api', 10, 5);
SELECT tenancy.set_throttle('api', 10, 5, plan => 'rl-basic', tenant => :'a');
SELECT tenancy.set_throttle('api', 0, 5, plan => 'rl-basic');
SELECT tenancy.set_throttle('api', 10, 0.5, plan => 'rl-basic');
SELECT tenancy.set_throttle('api', 10, 5, plan => 'no-such-plan');
\set VERBOSITY default

-- Application roles call throttle for their own tenant only, and cannot set rates.
CREATE ROLE rl_app;
SET ROLE rl_app;
SELECT tenancy.set_tenant(:'a');
SELECT tenancy.throttle(:'a', 'export') AS own_tenant;
\set VERBOSITY sqlstate
SELECT tenancy.throttle(:'b', 'export');
SELECT tenancy.set_throttle('api', 10, 5, plan => 'rl-basic');
SELECT tenancy.reset_throttles();
SELECT count(*) FROM tenancy.throttle_rates;
\set VERBOSITY default
SELECT tenancy.clear_tenant();
RESET ROLE;
DROP ROLE rl_app;

-- Governed settings: set_tenant gives a tenant's statements its plan's (or
-- its own) timeouts, memory and parallelism, for the session or the
-- transaction; clear_tenant gives the session its own values back.
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem;
SELECT tenancy.set_governance('statement_timeout', '200ms', plan => 'rl-basic');
SELECT tenancy.set_governance('work_mem', '8MB', plan => 'rl-basic');
SELECT tenancy.set_governance('work_mem', '32MB', tenant => :'a');
SELECT tenancy.set_tenant(:'a');
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem;
-- A statement over the plan's timeout is cancelled.
\set VERBOSITY sqlstate
SELECT pg_sleep(1);
\set VERBOSITY default
SELECT tenancy.clear_tenant();
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem;
BEGIN;
SELECT tenancy.set_tenant(:'a', true);
SELECT current_setting('statement_timeout') AS in_transaction;
COMMIT;
SELECT current_setting('statement_timeout') AS after_commit;
-- A new rule applies at the next set_tenant, in every session.
SELECT tenancy.set_governance('lock_timeout', '1s', tenant => :'a');
SELECT tenancy.set_tenant(:'a');
SELECT current_setting('lock_timeout') AS lock_timeout;
SELECT tenancy.clear_tenant();
-- A cap on running statements (the multi suite races it): one at a time.
SELECT tenancy.set_governance('max_running_statements', '1', tenant => :'a');
SELECT tenancy.set_tenant(:'a');
SELECT count(*) AS runs_alone FROM generate_series(1, 3);
SELECT tenancy.clear_tenant();
SELECT setting, value, plan, tenant_id IS NOT NULL AS for_tenant FROM tenancy.governance ORDER BY 1, 3;
SELECT tenancy.clear_governance('lock_timeout', tenant => :'a') AS cleared,
       tenancy.clear_governance('lock_timeout', tenant => :'a') AS again;
\set VERBOSITY sqlstate
SELECT tenancy.set_governance('search_path', 'public', plan => 'rl-basic');
SELECT tenancy.set_governance('statement_timeout', 'soon', plan => 'rl-basic');
SELECT tenancy.set_governance('max_running_statements', '0', plan => 'rl-basic');
SELECT tenancy.set_governance('max_running_statements', 'few', plan => 'rl-basic');
SELECT tenancy.set_governance('work_mem', '8MB');
SELECT tenancy.set_governance('work_mem', '8MB', plan => 'no-such-plan');
CREATE ROLE rl_admin_wannabe;
SET ROLE rl_admin_wannabe;
SELECT tenancy.set_governance('work_mem', '1GB', tenant => :'a');
RESET ROLE;
DROP ROLE rl_admin_wannabe;
\set VERBOSITY default
DELETE FROM tenancy.governance;

-- A deleted tenant takes its rates along.
SELECT tenancy.set_throttle('api', 10, 5, tenant => :'b');
DELETE FROM tenancy.tenants WHERE id = :'b';
SELECT count(*) AS rates_of_b FROM tenancy.throttle_rates WHERE tenant_id = :'b';
DELETE FROM tenancy.throttle_rates;
