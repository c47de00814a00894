#![deny(warnings)]
use mm_trace::stage;

trait Venue {
    fn name(&self) -> &'static str;

    /// A provided method can be timed where it is defined.
    #[stage("venue_quote")]
    fn quote(&self, mid: f64) -> f64 {
        mid * 1.001
    }

    fn create() -> Self
    where
        Self: Sized;
}

struct Binance;

impl Venue for Binance {
    #[stage]
    fn name(&self) -> &'static str {
        "binance"
    }

    #[stage]
    fn create() -> Self {
        Binance
    }
}

fn main() {
    let v = Binance::create();
    assert_eq!(v.name(), "binance");
    assert!(v.quote(100.0) > 100.0);
    let dynamic: &dyn Venue = &v;
    assert_eq!(dynamic.name(), "binance");
}
