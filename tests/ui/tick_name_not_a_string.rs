use mm_trace::traced_tick;

#[traced_tick(name = router)]
fn tick() {}

fn main() {
    tick();
}
