#![deny(warnings, missing_docs)]
//! Docs, attributes and visibility of the function are kept as written.

use mm_trace::stage;

/// Public, documented, `#[must_use]`: `missing_docs` and `unused_must_use` still see them.
#[must_use]
#[inline]
#[stage]
pub fn documented() -> u8 {
    1
}

/// Attributes after ours are kept too.
#[stage("cfg_kept")]
#[cfg(not(any()))]
pub(crate) fn cfg_kept() -> u8 {
    #![allow(clippy::let_and_return)]
    let x = 2;
    x
}

/// Inner attributes at the top of the body stay at the top.
#[stage]
#[deprecated(note = "kept")]
pub fn deprecated_fn() {}

mod inner {
    /// Visibility is re-emitted: `pub(super)` stays `pub(super)`.
    #[mm_trace::stage]
    pub(super) fn restricted() -> u8 {
        3
    }
}

#[allow(deprecated)]
fn main() {
    assert_eq!(documented() + cfg_kept() + inner::restricted(), 6);
    deprecated_fn();
}
