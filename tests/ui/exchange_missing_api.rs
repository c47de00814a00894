use mm_trace::exchange_req;

#[exchange_req(verb = "POST")]
fn place() {}

fn main() {
    place();
}
