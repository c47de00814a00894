#![deny(warnings)]
use mm_trace::stage;

#[stage]
fn sum(xs: impl IntoIterator<Item = u32>) -> u32 {
    xs.into_iter().sum()
}

#[stage]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|x| x % 2 == 0)
}

#[stage]
fn borrowed<'a>(xs: &'a [u32]) -> impl Iterator<Item = &'a u32> + 'a {
    xs.iter().rev()
}

#[stage("apply")]
fn apply(f: impl Fn(u32) -> u32, x: u32) -> impl std::fmt::Display {
    f(x)
}

fn main() {
    assert_eq!(sum(vec![1, 2, 3]), 6);
    assert_eq!(evens(5).count(), 3);
    assert_eq!(borrowed(&[1, 2]).next(), Some(&2));
    assert_eq!(apply(|x| x * 2, 4).to_string(), "8");
}
