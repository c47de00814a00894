use mm_trace::stage;

#[stage]
const fn limit() -> u32 {
    10
}

fn main() {
    let _ = limit();
}
