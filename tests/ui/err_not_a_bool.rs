use mm_trace::stage;

#[stage("fetch_md", err = "no")]
fn fetch() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = fetch();
}
