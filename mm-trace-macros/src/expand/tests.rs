//! Unit tests of `expand`.

use super::*;
use quote::quote;

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("expansion parses as a file");
    prettyplease::unparse(&file)
}

/// Whitespace-insensitive `contains`, so asserts do not depend on prettyplease's line breaks.
fn has(out: &str, needle: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squash(out).contains(&squash(needle))
}

fn expand_str(kind: Kind, args: TokenStream, item: TokenStream) -> String {
    pretty(attribute(kind, args, item, true))
}

#[test]
fn sync_stage_puts_a_guard_before_the_body() {
    let out = expand_str(
        Kind::Stage,
        quote!("fetch_md"),
        quote! {
            /// Docs stay.
            #[inline]
            pub(crate) fn fetch(&self, n: u32) -> Result<u32, E> {
                #![allow(unused)]
                let x = n?;
                Ok(x)
            }
        },
    );
    let expected = r#"/// Docs stay.
#[inline]
pub(crate) fn fetch(&self, n: u32) -> Result<u32, E> {
    #![allow(unused)]
    let __mm_guard = ::mm_trace::__private::StageGuard::enter_stage({
        static __MM_SITE: ::mm_trace::__private::Site = ::mm_trace::__private::Site::stage(
            "fetch_md",
        );
        &__MM_SITE
    });
    #[allow(clippy::redundant_closure_call)]
    let __mm_out = (move || -> Result<u32, E> {
        let x = n?;
        Ok(x)
    })();
    if ::mm_trace::__private::is_err(&__mm_out) {
        __mm_guard.close_failed();
    }
    __mm_out
}
"#;
    assert_eq!(out, expected);
}

#[test]
fn err_counting_follows_the_return_type_and_the_err_argument() {
    let plain = |args: TokenStream, item: TokenStream| expand_str(Kind::Stage, args, item);
    // Not a `Result`: the body is untouched.
    let out = plain(
        quote!(),
        quote!(
            fn f() -> u8 {
                1
            }
        ),
    );
    assert!(!has(&out, "close_failed"), "{out}");
    // `err = false`: not counted, even for a `Result`.
    let out = plain(
        quote!("s", err = false),
        quote!(
            fn f() -> Result<u8, E> {
                Ok(1)
            }
        ),
    );
    assert!(!has(&out, "close_failed") && !has(&out, "__mm_out"), "{out}");
    // `err = true` behind an alias.
    let out = plain(
        quote!(err = true),
        quote!(
            fn f() -> Outcome {
                Ok(())
            }
        ),
    );
    assert!(has(&out, "close_failed"), "{out}");
    // Paths to `Result` and async bodies.
    let out = plain(
        quote!(),
        quote!(
            fn f() -> std::io::Result<()> {
                Ok(())
            }
        ),
    );
    assert!(has(&out, "close_failed"), "{out}");
    let out = plain(
        quote!(),
        quote!(
            async fn f() -> Result<u8, E> {
                Ok(1)
            }
        ),
    );
    assert!(has(&out, "Instrumented::fallible("), "{out}");
    let out = plain(
        quote!(),
        quote!(
            fn f() -> impl Future<Output = Result<u8, E>> {
                async { Ok(1) }
            }
        ),
    );
    assert!(has(&out, "Instrumented::fallible("), "{out}");
    let out = expand_str(
        Kind::Tick,
        quote!(name = "router"),
        quote!(
            async fn t() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(has(&out, "TickFuture::fallible(") && has(&out, "Site::tick_kind(\"router\""), "{out}");
}

#[test]
fn run_time_labels_are_evaluated_before_the_body_into_the_span_site() {
    let out = expand_str(
        Kind::Exchange,
        quote!(verb = "GET", api = "quote", venue = self.venue()),
        quote!(
            fn quote(&self) -> u8 {
                1
            }
        ),
    );
    assert!(has(&out, "Site::exchange_labeled(\"GET\", \"quote\", &[\"venue\"]"), "{out}");
    assert!(has(&out, "let __mm_label_0 = self.venue();"), "{out}");
    assert!(has(&out, "StageGuard::enter(__mm_key)"), "{out}");
}

#[test]
fn bare_stage_uses_the_unraw_fn_name_and_tick_uses_tick_guard() {
    let out = expand_str(
        Kind::Stage,
        quote!(),
        quote!(
            fn r#type() {}
        ),
    );
    assert!(has(&out, "Site::stage(\"type\""), "{out}");
    let out = expand_str(
        Kind::Tick,
        quote!(),
        quote!(
            fn tick(&mut self) {}
        ),
    );
    assert!(has(&out, "TickGuard::begin"), "{out}");
    assert!(has(&out, "Site::tick(\"tick\""), "{out}");
}

#[test]
fn exchange_site_carries_verb_and_api() {
    let out = expand_str(
        Kind::Exchange,
        quote!(api = "order", verb = "POST"),
        quote!(
            fn place() {}
        ),
    );
    assert!(has(&out, "Site::exchange(\"POST\", \"order\""), "{out}");
}

#[test]
fn async_fn_wraps_the_body_with_a_typed_return_hint() {
    let out = expand_str(
        Kind::Stage,
        quote!(),
        quote!(
            async fn f(x: u8) -> Result<u8, E> {
                Ok(x?)
            }
        ),
    );
    assert!(has(&out, "Instrumented::fallible("), "{out}");
    assert!(has(&out, "async move {"), "{out}");
    assert!(has(&out, "let __mm_fake_return: Result<u8, E> = loop {};"), "{out}");
    assert!(out.trim_end().ends_with(".await\n}"), "{out}");
    let out = expand_str(
        Kind::Tick,
        quote!(),
        quote!(
            async fn t() -> impl Sized {}
        ),
    );
    assert!(has(&out, "TickFuture::new("), "{out}");
    assert!(!has(&out, "__mm_fake_return"), "no hint for impl Trait: {out}");
}

#[test]
fn fn_returning_a_future_wraps_the_returned_future() {
    let out = expand_str(
        Kind::Stage,
        quote!(),
        quote!(
            fn f(&self) -> impl Future<Output = u8> + '_ {
                async move { 1 }
            }
        ),
    );
    assert!(has(&out, "let __mm_future = (move || {"), "{out}");
    assert!(has(&out, "Instrumented::new("), "{out}");
    let out = expand_str(
        Kind::Stage,
        quote!(),
        quote!(
            fn f(&self) -> Pin<Box<dyn Future<Output = u8> + Send + '_>> {
                Box::pin(async { 1 })
            }
        ),
    );
    assert!(has(&out, "::std::boxed::Box::pin(::mm_trace::__private::Instrumented::new("), "{out}");
}

#[test]
fn compiled_out_returns_the_item_token_for_token() {
    for (kind, args) in [
        (Kind::Stage, quote!()),
        (Kind::Stage, quote!("x")),
        (Kind::Tick, quote!()),
        (Kind::Exchange, quote!(verb = "GET", api = "book")),
    ] {
        let item = quote! {
            /// Doc.
            #[must_use]
            pub async unsafe fn f<'a, T: Clone>(x: &'a T) -> impl Sized + 'a where T: Send { x.clone() }
        };
        let out = attribute(kind, args, item.clone(), false);
        assert_eq!(out.to_string(), item.to_string());
    }
}

#[test]
fn compiled_out_still_rejects_bad_arguments() {
    let out = attribute(
        Kind::Stage,
        quote!(""),
        quote!(
            fn f() {}
        ),
        false,
    );
    assert!(out.to_string().contains("compile_error"), "{out}");
}

#[test]
fn errors_keep_the_item() {
    let out = attribute(
        Kind::Stage,
        quote!(42),
        quote!(
            fn f() {}
        ),
        true,
    )
    .to_string();
    assert!(has(&out, "compile_error"), "{out}");
    assert!(has(&out, "fn f"), "{out}");
}
