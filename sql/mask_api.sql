-- Masking: the C-level text functions, attributes pgrx cannot express,
-- privileges and comments.

-- Version-1 C functions (src/mask/sql_functions.rs): called per row and
-- column by masked views, so they read and write text in place.
CREATE FUNCTION tenancy.mask_email(value text) RETURNS text
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_mask_email';
CREATE FUNCTION tenancy.mask_phone(value text) RETURNS text
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_mask_phone';
CREATE FUNCTION tenancy.mask_card(value text) RETURNS text
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_mask_card';
CREATE FUNCTION tenancy.mask_name(value text) RETURNS text
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_mask_name';
CREATE FUNCTION tenancy.mask_partial(value text, keep_start integer, keep_end integer, fill text DEFAULT '*')
    RETURNS text IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_mask_partial';
-- STABLE: it reads the key, which a restore may replace.
CREATE FUNCTION tenancy.pseudonymize(value text) RETURNS text
    STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_pseudonymize';

-- No value makes these fail, so they reveal nothing through errors: the
-- planner may run them before a security barrier's own conditions.
ALTER FUNCTION tenancy.mask_email(text) LEAKPROOF;
ALTER FUNCTION tenancy.mask_phone(text) LEAKPROOF;
ALTER FUNCTION tenancy.mask_card(text) LEAKPROOF;
ALTER FUNCTION tenancy.mask_name(text) LEAKPROOF;
ALTER FUNCTION tenancy.mask_ip(inet) LEAKPROOF;
ALTER FUNCTION tenancy.mask_partial(text, integer, integer, text) LEAKPROOF;
ALTER FUNCTION tenancy.redact(text) LEAKPROOF;
ALTER FUNCTION tenancy.pseudonymize(text) LEAKPROOF;
-- generalize_date raises 22023 for an unknown precision: not LEAKPROOF.

-- Only the owner of a table changes its rules, views and rows (checked
-- inside); granting masked access is an administrator's decision.
REVOKE EXECUTE ON FUNCTION tenancy.grant_masked_access(name) FROM PUBLIC;
GRANT SELECT ON tenancy.masking_rules TO PUBLIC;

COMMENT ON FUNCTION tenancy.mask_email(text) IS
    'Masks an email address: first two characters of the local part, ***, the domain (john.doe@example.com -> jo***@example.com).';
COMMENT ON FUNCTION tenancy.mask_phone(text) IS 'Masks a phone number: every digit but the last four becomes *, separators kept.';
COMMENT ON FUNCTION tenancy.mask_card(text) IS 'Masks a card number: every digit but the last four becomes *.';
COMMENT ON FUNCTION tenancy.mask_name(text) IS 'Masks a name: the first letter of each word, then *** (John Doe -> J*** D***).';
COMMENT ON FUNCTION tenancy.mask_ip(inet) IS 'Masks an address to its network: IPv4 keeps /24, IPv6 keeps /48, host bits zero.';
COMMENT ON FUNCTION tenancy.mask_partial(text, integer, integer, text) IS
    'Keeps keep_start characters at the start and keep_end at the end, every other character becomes fill.';
COMMENT ON FUNCTION tenancy.redact(text) IS 'Returns [REDACTED].';
COMMENT ON FUNCTION tenancy.generalize_date(timestamptz, text) IS
    'Truncates a timestamp to its day, month or year, in UTC.';
COMMENT ON FUNCTION tenancy.pseudonymize(text) IS
    'A stable token for the value: HMAC-SHA256 under this database''s secret key (tenancy.masking_key), 32 hex digits.';
COMMENT ON FUNCTION tenancy.set_masking_rule(regclass, name, text, text) IS
    'Sets a column''s masking rule (closed vocabulary) and data classification.';
COMMENT ON FUNCTION tenancy.clear_masking_rule(regclass, name) IS 'Removes a column''s masking rule and classification.';
COMMENT ON FUNCTION tenancy.detect_pii(regclass) IS
    'Suggests masking rules from column names and sampled values (emails, phones, Luhn card numbers, IPs, names, birth dates).';
COMMENT ON FUNCTION tenancy.create_masked_view(regclass, name) IS
    'Creates or replaces a security_barrier view of the table with its masking rules applied and tenant isolation kept.';
COMMENT ON FUNCTION tenancy.grant_masked_access(name) IS
    'Lets a role read the masked views and makes sure it can read nothing underneath (55000 when it still could).';
COMMENT ON FUNCTION tenancy.anonymize_table(regclass, uuid, integer) IS
    'Rewrites a table''s rows (one tenant''s, if given) in place with its masking rules, in primary-key batches; returns the row count.';
COMMENT ON FUNCTION tenancy._masking_key_changed() IS
    'Internal: trigger that makes every backend read the pseudonymization key again when it changes.';
CREATE TRIGGER masking_key_changed AFTER INSERT OR UPDATE OR DELETE ON tenancy.masking_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._masking_key_changed();
COMMENT ON TRIGGER masking_key_changed ON tenancy.masking_key IS 'Makes backends read the new key.';
