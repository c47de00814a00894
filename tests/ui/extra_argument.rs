use mm_trace::stage;

#[stage("fetch_md", "again")]
fn fetch_md() {}

fn main() {
    fetch_md();
}
