//! Compile-time behaviour of the attributes: every supported function shape compiles without
//! warnings (`tests/pass`), and every misuse is one error spanned on the offending token with a
//! message saying what to write (`tests/ui`, `.stderr` snapshots; regenerate with
//! `TRYBUILD=overwrite cargo test --test ui` and read the diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
