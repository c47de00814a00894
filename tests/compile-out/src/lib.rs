//! Instrumented functions and their uninstrumented twins. With `default-features = false` each
//! pair must compile to identical machine code (checked by `.ci/compile_out.sh`).
#![deny(warnings)]
#![allow(missing_docs)]

use mm_trace::{exchange_req, stage, traced_tick};

#[stage("fetch_md")]
#[inline(never)]
pub fn instrumented_stage(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9).rotate_left(7) ^ 42
}

#[inline(never)]
pub fn plain_stage(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9).rotate_left(7) ^ 42
}

#[traced_tick]
#[inline(never)]
pub fn instrumented_tick(v: &mut [u64]) -> u64 {
    let mut acc = 0u64;
    for x in v.iter_mut() {
        *x = instrumented_stage(*x);
        acc = acc.wrapping_add(*x);
    }
    acc
}

#[inline(never)]
pub fn plain_tick(v: &mut [u64]) -> u64 {
    let mut acc = 0u64;
    for x in v.iter_mut() {
        *x = plain_stage(*x);
        acc = acc.wrapping_add(*x);
    }
    acc
}

#[exchange_req(verb = "POST", api = "order")]
#[inline(never)]
pub fn instrumented_exchange(px: u64, qty: u64) -> Result<u64, String> {
    if qty == 0 {
        return Err("empty order".to_owned());
    }
    Ok(px.wrapping_mul(qty))
}

#[inline(never)]
pub fn plain_exchange(px: u64, qty: u64) -> Result<u64, String> {
    if qty == 0 {
        return Err("empty order".to_owned());
    }
    Ok(px.wrapping_mul(qty))
}

#[inline(never)]
pub fn instrumented_sections(x: u64) -> u64 {
    mm_trace::stage_guard!("guards");
    mm_trace::in_stage!("spread", { x.wrapping_add(17).rotate_right(3) })
}

#[inline(never)]
pub fn plain_sections(x: u64) -> u64 {
    x.wrapping_add(17).rotate_right(3)
}

#[stage]
pub async fn instrumented_async(x: u64) -> u64 {
    x + 1
}

pub async fn plain_async(x: u64) -> u64 {
    x + 1
}

#[inline(never)]
pub fn poll_instrumented_async(x: u64) -> u64 {
    block_on(instrumented_async(x))
}

#[inline(never)]
pub fn poll_plain_async(x: u64) -> u64 {
    block_on(plain_async(x))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
