-- pg_tenancy 0.1.0 -> 0.2.0
--
-- Run by ALTER EXTENSION pg_tenancy UPDATE. This file ships with the extension and,
-- once 0.2.0 is released, never changes (scripts/check-releases.sh). The upgrade
-- suite (scripts/test-upgrade.sh) proves that 0.1.0 updated with it matches a
-- fresh 0.2.0 install object by object and keeps every row of data.
\echo Use "ALTER EXTENSION pg_tenancy UPDATE" to load this file. \quit
