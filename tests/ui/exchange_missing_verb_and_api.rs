use mm_trace::exchange_req;

#[exchange_req]
fn place() {}

fn main() {
    place();
}
