use mm_trace::stage;

trait Venue {
    #[stage]
    fn quote(&self) -> f64;
}

fn main() {}
