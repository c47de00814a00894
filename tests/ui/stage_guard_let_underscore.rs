// `let _ = stage_guard!(..)` would drop the guard at once and time nothing: it must not compile.
fn main() {
    let _ = mm_trace::stage_guard!("risk");
}
