use mm_trace::stage;

#[stage(42)]
fn fetch_md() {}

fn main() {
    fetch_md();
}
