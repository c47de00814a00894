#![deny(warnings)]
use mm_trace::stage;

#[stage]
fn plain() {}

#[stage("named")]
fn named(x: u32) -> u32 {
    x + 1
}

#[stage("with_patterns")]
fn patterns((a, b): (u8, u8), mut c: u8, _: u8) -> u8 {
    c += a;
    c + b
}

#[stage]
extern "C" fn c_abi(x: i32) -> i32 {
    x
}

#[stage]
fn r#match() -> &'static str {
    "raw identifiers name the stage without r#"
}

fn main() {
    plain();
    assert_eq!(named(1), 2);
    assert_eq!(patterns((1, 2), 3, 4), 6);
    assert_eq!(c_abi(5), 5);
    assert!(!r#match().is_empty());
}
