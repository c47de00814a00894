#![deny(warnings)]
use std::fmt::Debug;

use mm_trace::stage;

#[stage]
fn generic<T: Clone + Debug>(x: &T) -> T {
    x.clone()
}

#[stage("where_clause")]
fn with_where<K, V>(pairs: &[(K, V)]) -> usize
where
    K: Ord,
    V: Default + PartialEq,
{
    pairs.iter().filter(|(_, v)| *v != V::default()).count()
}

#[stage]
fn lifetimes<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
    if a.len() >= b.len() { a } else { b }
}

#[stage]
fn const_generic<const N: usize>(xs: [u8; N]) -> usize {
    xs.len() * N
}

struct Wrapper<T>(T);

impl<T: Copy + Into<u64>> Wrapper<T> {
    #[stage]
    fn widen<U>(&self, extra: U) -> u64
    where
        U: Into<u64>,
    {
        self.0.into() + extra.into()
    }
}

fn main() {
    assert_eq!(generic(&7u8), 7);
    assert_eq!(with_where(&[(1, 0), (2, 3)]), 1);
    assert_eq!(lifetimes("ab", "c"), "ab");
    assert_eq!(const_generic([1, 2, 3]), 9);
    assert_eq!(Wrapper(2u32).widen(3u8), 5);
}
