use mm_trace::exchange_req;

// Other names are run-time labels, so a misspelled `verb` is caught as the missing one.
#[exchange_req(verbs = "GET", api = "book")]
fn book() {}

fn main() {
    book();
}
