use mm_trace::traced_tick;

struct Bot;

#[traced_tick]
impl Bot {
    fn tick(&mut self) {}
}

fn main() {}
