use mm_trace::exchange_req;

#[exchange_req(verb = "POST", api = "")]
fn place() {}

fn main() {
    place();
}
