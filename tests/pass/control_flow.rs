#![deny(warnings)]
use mm_trace::stage;

#[stage]
fn early_return(x: i32) -> i32 {
    if x < 0 {
        return 0;
    }
    x
}

#[stage]
fn question_mark(s: &str) -> Result<i32, std::num::ParseIntError> {
    let v: i32 = s.parse()?;
    Ok(v * 2)
}

#[stage]
fn option_question_mark(xs: &[u8]) -> Option<u8> {
    let first = xs.first()?;
    Some(first + 1)
}

#[stage]
fn loops(n: u32) -> u32 {
    let mut acc = 0;
    for i in 0..n {
        if i == 3 {
            break;
        }
        acc += i;
    }
    acc
}

#[stage]
fn diverges() -> ! {
    panic!("never returns")
}

#[stage]
fn may_panic(fail: bool) -> u8 {
    if fail {
        panic!("boom");
    }
    1
}

fn main() {
    assert_eq!(early_return(-1), 0);
    assert_eq!(question_mark("21"), Ok(42));
    assert!(question_mark("x").is_err());
    assert_eq!(option_question_mark(&[1]), Some(2));
    assert_eq!(loops(10), 3);
    assert_eq!(may_panic(false), 1);
    std::panic::set_hook(Box::new(|_| {}));
    assert!(std::panic::catch_unwind(|| may_panic(true)).is_err());
    if std::env::args().count() > 100 {
        diverges();
    }
}
