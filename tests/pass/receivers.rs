#![deny(warnings)]
use std::pin::Pin;
use std::rc::Rc;

use mm_trace::stage;

struct Book {
    bids: Vec<u32>,
}

impl Book {
    #[stage]
    fn by_value(self) -> usize {
        self.bids.len()
    }

    #[stage]
    fn by_mut_value(mut self) -> Self {
        self.bids.push(1);
        self
    }

    #[stage]
    fn by_ref(&self) -> usize {
        self.bids.len()
    }

    #[stage]
    fn by_mut(&mut self) {
        self.bids.push(2);
    }

    #[stage]
    fn by_explicit_lifetime<'a>(&'a self) -> &'a [u32] {
        &self.bids
    }

    #[stage]
    fn boxed(self: Box<Self>) -> usize {
        self.bids.len()
    }

    #[stage]
    fn rc(self: Rc<Self>) -> usize {
        self.bids.len()
    }

    #[stage]
    fn pinned(self: Pin<&mut Self>) -> usize {
        self.bids.len()
    }

    #[stage]
    fn associated() -> Self {
        Book { bids: Vec::new() }
    }
}

fn main() {
    let mut b = Book::associated().by_mut_value();
    b.by_mut();
    assert_eq!(b.by_ref(), 2);
    assert_eq!(b.by_explicit_lifetime().len(), 2);
    assert_eq!(Pin::new(&mut b).pinned(), 2);
    assert_eq!(Rc::new(Book::associated()).rc(), 0);
    assert_eq!(Box::new(Book::associated()).boxed(), 0);
    assert_eq!(b.by_value(), 2);
}
