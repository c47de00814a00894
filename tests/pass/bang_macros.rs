#![deny(warnings)]
// `stage` (the attribute) and the bang macros are importable together into one module: the bang
// forms are named `in_stage!` and `stage_guard!`, so nothing collides (E0255).
use mm_trace::{in_stage, stage, stage_guard};

#[stage]
fn quote(mid: f64) -> f64 {
    let spread = in_stage!("spread", { mid * 0.001 });
    stage_guard!("guards");
    mid + spread
}

fn main() {
    assert!(quote(100.0) > 100.0);
    let v = mm_trace::in_stage!("expr", 1 + 1);
    assert_eq!(v, 2);
}
