use mm_trace::exchange_req;

#[exchange_req(verb = "POST", api = "order", venue = "binance")]
fn place() {}

fn main() {
    place();
}
