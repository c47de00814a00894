use mm_trace::stage;

// `err = true` counts `Err` returns: the function must return a `Result`.
#[stage("count", err = true)]
fn count() -> u32 {
    1
}

fn main() {
    let _ = count();
}
