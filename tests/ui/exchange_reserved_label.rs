use mm_trace::exchange_req;

#[exchange_req(verb = "GET", api = "book", le = "1")]
fn book() {}

fn main() {
    book();
}
