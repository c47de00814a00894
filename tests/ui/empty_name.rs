use mm_trace::stage;

#[stage("")]
fn fetch_md() {}

fn main() {
    fetch_md();
}
