use mm_trace::traced_tick;

// `parent` takes an incoming W3C traceparent: `&str`, `String` or an `Option` of either.
#[traced_tick(parent = 5)]
fn literal() {}

#[traced_tick(parent = id)]
fn number(id: u64) {
    let _ = id;
}

fn main() {
    literal();
    number(1);
}
