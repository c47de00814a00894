use mm_trace::stage;

const FETCH: &str = "fetch_md";

#[stage(FETCH)]
fn fetch() {}

fn main() {
    let _ = FETCH;
    fetch();
}
