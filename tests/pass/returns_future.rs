#![deny(warnings)]
use std::future::Future;
use std::pin::Pin;

use mm_trace::stage;

#[stage("fetch_md")]
fn fetch(n: u32) -> impl Future<Output = u32> {
    let doubled = n * 2;
    async move { doubled }
}

struct Client {
    base: u32,
}

impl Client {
    #[stage]
    fn borrowed(&self) -> impl Future<Output = u32> + Send + '_ {
        async move { self.base }
    }

    /// The shape `#[async_trait]` produces.
    #[stage]
    fn boxed(&self, x: u32) -> Pin<Box<dyn Future<Output = u32> + Send + '_>> {
        if x == 0 {
            return Box::pin(async { 0 });
        }
        Box::pin(async move { self.base + x })
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(f)
}

fn main() {
    assert_eq!(block_on(fetch(2)), 4);
    let c = Client { base: 10 };
    assert_eq!(block_on(c.borrowed()), 10);
    assert_eq!(block_on(c.boxed(1)), 11);
    assert_eq!(block_on(c.boxed(0)), 0);
}
