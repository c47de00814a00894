use mm_trace::stage;

#[stage(name = "fetch_md")]
fn fetch_md() {}

fn main() {
    fetch_md();
}
