use mm_trace::traced_tick;

#[traced_tick(deadline_ms = 200)]
fn tick() {}

fn main() {
    tick();
}
