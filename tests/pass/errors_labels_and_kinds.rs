// The arguments added for errors, run-time labels and kinds of tick, in every shape.
use mm_trace::{exchange_req, stage, traced_tick};

struct Venue(String);

impl Venue {
    fn name(&self) -> &str {
        &self.0
    }

    #[exchange_req(verb = "GET", api = "quote", venue = self.name())]
    fn quote(&self) -> Result<u32, String> {
        Ok(1)
    }

    #[exchange_req(verb = "POST", api = "order", venue = self.0.clone(), err = false)]
    async fn order(&self, qty: u32) -> Result<u32, String> {
        Ok(qty)
    }

    #[exchange_req(verb = "GET", api = "book", venue = "static")]
    fn book(&self) -> impl std::future::Future<Output = Result<u8, String>> + '_ {
        async move { Ok(self.0.len() as u8) }
    }
}

type Outcome<T> = Result<T, std::io::Error>;

#[stage("read", err = true)]
fn read(path: &str) -> Outcome<usize> {
    Ok(path.len())
}

#[stage(err = false)]
fn lenient() -> Result<(), ()> {
    Err(())
}

#[stage]
fn borrowed<'a>(v: &'a [u8]) -> Result<&'a [u8], String> {
    v.get(..1).ok_or_else(|| "empty".to_owned())
}

#[traced_tick(name = "router", err = true)]
fn route(v: &Venue) -> Result<u32, String> {
    let q = v.quote()?;
    let _ = read("x").map_err(|e| e.to_string())?;
    let _ = lenient();
    let _ = borrowed(b"ab")?;
    Ok(q)
}

#[traced_tick(name = "market_data")]
async fn md(v: &Venue) -> Result<u32, String> {
    let a = v.order(2).await?;
    let b = v.book().await?;
    Ok(a + u32::from(b))
}

fn main() {
    let v = Venue("binance".into());
    assert_eq!(route(&v), Ok(1));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(md(&v)), Ok(9));
    mm_trace::stage_guard!("tail");
}
