//! Masking across sessions and databases: pseudonymization tokens are the
//! same in every session and after pg_dump / pg_restore, and the restored
//! masked view still masks.

use pg_tenancy_multi::TestDb;

/// The token of a value, computed in a fresh session.
fn token(db: &TestDb, value: &str) -> String {
    db.connect()
        .query_one("SELECT tenancy.pseudonymize($1)", &[&value])
        .unwrap()
        .get(0)
}

#[test]
fn tokens_survive_sessions_and_dump_and_restore() {
    let source = TestDb::new("multi_mask_source");
    source
        .connect()
        .batch_execute(
            "CREATE TABLE people (id int PRIMARY KEY, email text, ssn text);
             INSERT INTO people VALUES (1, 'john.doe@example.com', '123-45-6789');
             SELECT tenancy.set_masking_rule('people', 'email', 'email');
             SELECT tenancy.set_masking_rule('people', 'ssn', 'pseudonymize', 'restricted');
             SELECT tenancy.create_masked_view('people');",
        )
        .unwrap();
    let before = token(&source, "123-45-6789");
    assert_eq!(before.len(), 32);
    assert_eq!(
        token(&source, "123-45-6789"),
        before,
        "another session, the same token"
    );
    // Another database has another key, so other tokens.
    let other = TestDb::new("multi_mask_other");
    assert_ne!(token(&other, "123-45-6789"), before);

    let target = pg_tenancy_multi::dump_and_restore(&source, "multi_mask_target");

    assert_eq!(
        token(&target, "123-45-6789"),
        before,
        "the dumped key came back"
    );
    let row = target
        .connect()
        .query_one("SELECT email, ssn FROM tenancy_masked.people", &[])
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "jo***@example.com");
    assert_eq!(row.get::<_, String>(1), before);
    let rules: i64 = target
        .connect()
        .query_one("SELECT count(*) FROM tenancy.masking_rules", &[])
        .unwrap()
        .get(0);
    assert_eq!(rules, 2);
}
