use mm_trace::stage;

#[stage]
struct Book {
    bids: Vec<u32>,
}

fn main() {}
