#[mm_trace::stage("limit")]
const LIMIT: u32 = 10;

fn main() {}
