use mm_trace::exchange_req;

#[exchange_req(verb = "POST", api = "order", verb = "PUT")]
fn place() {}

fn main() {
    place();
}
