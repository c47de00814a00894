use mm_trace::stage;

#[stage("fetch md")]
fn fetch_md() {}

fn main() {
    fetch_md();
}
