#![deny(warnings)]
use mm_trace::stage;

/// # Safety
/// `p` must be valid for reads.
#[stage]
unsafe fn read(p: *const u64) -> u64 {
    // SAFETY: the caller guarantees `p` is valid for reads.
    unsafe { *p }
}

struct Raw(*const u64);

impl Raw {
    /// # Safety
    /// The pointer must be valid.
    #[stage("raw_get")]
    pub unsafe fn get(&self) -> u64 {
        // SAFETY: forwarded to the caller.
        unsafe { read(self.0) }
    }
}

fn main() {
    let x = 42u64;
    // SAFETY: `x` lives for the whole call.
    assert_eq!(unsafe { read(&x) }, 42);
    // SAFETY: as above.
    assert_eq!(unsafe { Raw(&x).get() }, 42);
}
