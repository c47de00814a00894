fn main() {
    let x = mm_trace::in_stage!("", 1 + 1);
    let _ = x;
}
