//! What counts as a failed outcome of an instrumented function (`err` counting).

/// A function outcome whose failures are counted (`err` counting): `Result`, `Err` failing.
#[diagnostic::on_unimplemented(
    message = "`err = true` counts `Err` returns, but `{Self}` is not a `Result`",
    label = "this function's outcome is `{Self}`",
    note = "remove `err = true`, or return a `Result`"
)]
pub trait Outcome {
    /// Whether this outcome is a failure.
    fn is_failure(&self) -> bool;
}

impl<T, E> Outcome for Result<T, E> {
    #[inline(always)]
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}
