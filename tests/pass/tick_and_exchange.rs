#![deny(warnings)]
use mm_trace::{exchange_req, stage, traced_tick};

#[derive(Debug)]
struct ExErr;

struct Bot {
    orders: u32,
}

impl Bot {
    #[traced_tick]
    fn tick(&mut self) -> Result<(), ExErr> {
        self.quote();
        self.place(1.0)?;
        Ok(())
    }

    #[traced_tick]
    async fn tick_async(&mut self) -> Result<u32, ExErr> {
        self.place(2.0)?;
        Ok(self.place_async(3.0).await?)
    }

    #[stage]
    fn quote(&self) {}

    #[exchange_req(verb = "POST", api = "order")]
    fn place(&mut self, _px: f64) -> Result<(), ExErr> {
        self.orders += 1;
        Ok(())
    }

    #[exchange_req(api = "order", verb = "PUT",)]
    async fn place_async(&mut self, _px: f64) -> Result<u32, ExErr> {
        self.orders += 1;
        Ok(self.orders)
    }
}

#[traced_tick]
fn free_tick() -> u8 {
    7
}

fn main() {
    let mut bot = Bot { orders: 0 };
    bot.tick().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(bot.tick_async()).unwrap(), 3);
    assert_eq!(free_tick(), 7);
}
