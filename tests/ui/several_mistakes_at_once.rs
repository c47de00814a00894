use mm_trace::exchange_req;

#[exchange_req(verbs = "POST", api = 1)]
fn place() {}

fn main() {
    place();
}
