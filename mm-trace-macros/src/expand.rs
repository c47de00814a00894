//! Code generation: a guard at the top of a sync body, a wrapping future for async bodies and
//! for functions that return a future.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{GenericArgument, PathArguments, ReturnType, Type, TypeParamBound};

use crate::args::{self, Args, Errors, Kind};
use crate::item::{self, FnItem};

/// The whole attribute: parse arguments and item, then expand (or, with instrumentation compiled
/// out, return the item token for token). On error the item is still emitted unchanged, so one
/// mistake gives one compile error and no follow-up errors at the function's call sites.
pub fn attribute(kind: Kind, args: TokenStream, item: TokenStream, enabled: bool) -> TokenStream {
    let parsed_args = args::parse(kind, args);
    let parsed_item = item::parse(kind, item.clone());
    let (args, fn_item) = match (parsed_args, parsed_item) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(mut e), Err(e2)) => {
            e.combine(e2);
            return with_error(item, e);
        }
        (Err(e), _) | (_, Err(e)) => return with_error(item, e),
    };
    if !enabled {
        return item;
    }
    expand(&args, &fn_item)
}

fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut out = error.into_compile_error();
    out.extend(item);
    out
}

/// How the function's result relates to the time to measure.
enum Shape {
    /// Plain sync fn: a guard lives for the body.
    Sync,
    /// `async fn`: the body becomes an instrumented `async move` block.
    Async,
    /// `fn -> impl Future`: the returned future is wrapped, so time runs from its first poll.
    ReturnsImplFuture,
    /// `fn -> Pin<Box<dyn Future ..>>` (e.g. after `#[async_trait]`): the same, boxed again.
    ReturnsBoxedFuture,
}

fn shape(f: &FnItem) -> Shape {
    if f.sig.asyncness.is_some() {
        return Shape::Async;
    }
    match &f.sig.output {
        ReturnType::Type(_, ty) if is_impl_future(ty) => Shape::ReturnsImplFuture,
        ReturnType::Type(_, ty) if is_pin_box_dyn_future(ty) => Shape::ReturnsBoxedFuture,
        _ => Shape::Sync,
    }
}

fn has_future_bound<'a>(mut bounds: impl Iterator<Item = &'a TypeParamBound>) -> bool {
    bounds.any(|b| match b {
        TypeParamBound::Trait(t) => {
            t.path.segments.last().is_some_and(|s| s.ident == "Future" || s.ident == "IntoFuture")
        }
        _ => false,
    })
}

fn is_impl_future(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(t) => has_future_bound(t.bounds.iter()),
        Type::Paren(p) => is_impl_future(&p.elem),
        Type::Group(g) => is_impl_future(&g.elem),
        _ => false,
    }
}

fn single_type_arg<'a>(ty: &'a Type, outer: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != outer {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

fn is_pin_box_dyn_future(ty: &Type) -> bool {
    let Some(boxed) = single_type_arg(ty, "Pin") else {
        return false;
    };
    let Some(inner) = single_type_arg(boxed, "Box") else {
        return false;
    };
    matches!(inner, Type::TraitObject(t) if has_future_bound(t.bounds.iter()))
}

fn contains_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(i) => i == "impl",
        TokenTree::Group(g) => contains_impl(g.stream()),
        _ => false,
    })
}

/// The call site's `static` and a `&'static` reference to it, as one expression.
fn site(args: &Args, f: &FnItem) -> TokenStream {
    let ctor = match args {
        Args::Stage { name, .. } => {
            let name = name.clone().unwrap_or_else(|| f.sig.ident.unraw().to_string());
            quote!(stage(#name))
        }
        Args::Tick { name: None, .. } => {
            let name = f.sig.ident.unraw().to_string();
            quote!(tick(#name))
        }
        Args::Tick { name: Some(kind), .. } => quote!(tick_kind(#kind)),
        Args::Exchange { verb, api, labels, .. } if labels.is_empty() => quote!(exchange(#verb, #api)),
        Args::Exchange { verb, api, labels, .. } => {
            let names = labels.iter().map(|(n, _)| n.as_str());
            quote!(exchange_labeled(#verb, #api, &[#(#names),*]))
        }
    };
    quote! {{
        static __MM_SITE: ::mm_trace::__private::Site = ::mm_trace::__private::Site::#ctor;
        &__MM_SITE
    }}
}

/// The `Result` type a function's outcome has, if it is written as one: the return type of a
/// sync or `async fn`, or the `Output` of a returned `impl Future` / `Pin<Box<dyn Future>>`.
fn outcome_type<'a>(f: &'a FnItem, shape: &Shape) -> Option<&'a Type> {
    let ReturnType::Type(_, ty) = &f.sig.output else { return None };
    let out = match shape {
        Shape::Sync | Shape::Async => &**ty,
        Shape::ReturnsImplFuture | Shape::ReturnsBoxedFuture => future_output(ty)?,
    };
    is_result(out).then_some(out)
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        Type::Paren(p) => is_result(&p.elem),
        Type::Group(g) => is_result(&g.elem),
        _ => false,
    }
}

/// `Output = T` of the `Future` bound of `impl Future<Output = T>` or `Pin<Box<dyn Future<..>>>`.
fn future_output(ty: &Type) -> Option<&Type> {
    let bounds: Vec<&TypeParamBound> = match ty {
        Type::ImplTrait(t) => t.bounds.iter().collect(),
        Type::Paren(p) => return future_output(&p.elem),
        Type::Group(g) => return future_output(&g.elem),
        _ => match single_type_arg(ty, "Pin").and_then(|b| single_type_arg(b, "Box")) {
            Some(Type::TraitObject(t)) => t.bounds.iter().collect(),
            _ => return None,
        },
    };
    bounds.into_iter().find_map(|b| {
        let TypeParamBound::Trait(t) = b else { return None };
        let seg = t.path.segments.last().filter(|s| s.ident == "Future")?;
        let PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
        args.args.iter().find_map(|a| match a {
            GenericArgument::AssocType(at) if at.ident == "Output" => Some(&at.ty),
            _ => None,
        })
    })
}

/// Statements evaluating the run-time labels of an exchange request into the site its span
/// records under (`__mm_key`), before the body runs: each value is any `AsRef<str>` and lives
/// only until the site is found (no lock or allocation for values seen before on this thread).
fn labeled_key(args: &Args, site: &TokenStream) -> Option<TokenStream> {
    let Args::Exchange { labels, .. } = args else { return None };
    if labels.is_empty() {
        return None;
    }
    let key = proc_macro2::Ident::new("__mm_key", Span::mixed_site());
    let values: Vec<proc_macro2::Ident> =
        (0..labels.len()).map(|i| proc_macro2::Ident::new(&format!("__mm_label_{i}"), Span::mixed_site())).collect();
    let exprs = labels.iter().map(|(_, e)| e);
    Some(quote! {
        let #key = {
            #(let #values = #exprs;)*
            ::mm_trace::__private::Site::labeled(
                #site,
                &[#(::core::convert::AsRef::<str>::as_ref(&#values)),*],
            )
        };
    })
}

/// Expands a parsed, valid function.
pub fn expand(args: &Args, f: &FnItem) -> TokenStream {
    let site = site(args, f);
    let is_tick = matches!(args, Args::Tick { .. });
    let body = &f.body;
    let guard = proc_macro2::Ident::new("__mm_guard", Span::mixed_site());
    let fut = proc_macro2::Ident::new("__mm_future", Span::mixed_site());
    let out = proc_macro2::Ident::new("__mm_out", Span::mixed_site());
    let key = proc_macro2::Ident::new("__mm_key", Span::mixed_site());
    let shape = shape(f);
    let errors = match args {
        Args::Stage { errors, .. } | Args::Tick { errors, .. } | Args::Exchange { errors, .. } => *errors,
    };
    let outcome = outcome_type(f, &shape);
    // `err = true` counts whatever the type looks like (the wrapper then requires a `Result`).
    let fallible = match errors {
        Errors::Off => false,
        Errors::On => true,
        Errors::Auto => outcome.is_some(),
    };
    let mut labeled = labeled_key(args, &site);
    // An incoming traceparent, evaluated (and copied, for a future) before the body runs.
    let parent_arg = match args {
        Args::Tick { parent: Some(expr), .. } => Some(expr),
        _ => None,
    };
    let parent = proc_macro2::Ident::new("__mm_parent", Span::mixed_site());
    // Sync: read in the guard's own statement (a borrow of an argument ends there, before the
    // body may move it); a future: copied first, as the body moves the arguments.
    if let Some(expr) = parent_arg
        && !matches!(shape, Shape::Sync)
    {
        labeled = Some(quote!(#labeled let #parent = ::mm_trace::__private::owned_traceparent(&(#expr));));
    }
    let wrapper = if is_tick { quote!(TickFuture) } else { quote!(Instrumented) };
    // A labeled exchange request records under the site of its label values.
    let span_site =
        if matches!(args, Args::Exchange { labels, .. } if !labels.is_empty()) { quote!(#key) } else { site.clone() };
    let with_parent = if parent_arg.is_some() { quote!(.with_parent(&#parent)) } else { TokenStream::new() };
    let wrap = |fut: TokenStream| {
        if fallible {
            quote!(::mm_trace::__private::#wrapper::fallible(#span_site, #fut)#with_parent)
        } else {
            quote!(::mm_trace::__private::#wrapper::new(#span_site, #fut)#with_parent)
        }
    };
    let wrapped_fut = wrap(quote!(#fut));
    let new_body = match shape {
        Shape::Sync => {
            let enter = match args {
                Args::Tick { parent: Some(expr), .. } => quote!(TickGuard::begin_with_parent(#span_site, &(#expr))),
                Args::Tick { .. } => quote!(TickGuard::begin(#span_site)),
                Args::Stage { .. } => quote!(StageGuard::enter_stage(#span_site)),
                Args::Exchange { .. } => quote!(StageGuard::enter(#span_site)),
            };
            if fallible {
                let ret = match &f.sig.output {
                    ReturnType::Type(_, ty) if !contains_impl(ty.to_token_stream()) => quote!(-> #ty),
                    _ => TokenStream::new(),
                };
                quote! {
                    #labeled
                    let #guard = ::mm_trace::__private::#enter;
                    #[allow(clippy::redundant_closure_call)]
                    let #out = (move || #ret { #body })();
                    if ::mm_trace::__private::is_err(&#out) {
                        #guard.close_failed();
                    }
                    #out
                }
            } else {
                quote! {
                    #labeled
                    let #guard = ::mm_trace::__private::#enter;
                    #body
                }
            }
        }
        Shape::Async => {
            let hint = return_type_hint(&f.sig.output);
            let wrapped = wrap(quote!(async move {
                #hint
                #body
            }));
            quote! {
                #labeled
                #wrapped.await
            }
        }
        Shape::ReturnsImplFuture => quote! {
            #labeled
            #[allow(clippy::redundant_closure_call)]
            let #fut = (move || { #body })();
            #wrapped_fut
        },
        Shape::ReturnsBoxedFuture => {
            // The closure gets the declared type so each `Box::pin(..)` coerces as in the original.
            let ReturnType::Type(_, ty) = &f.sig.output else { unreachable!("boxed future has a type") };
            quote! {
            #labeled
            #[allow(clippy::redundant_closure_call)]
            let #fut = (move || -> #ty { #body })();
            ::std::boxed::Box::pin(#wrapped_fut)
            }
        }
    };
    f.with_body(new_body)
}

/// Gives `return` and `?` inside the `async move` block the function's return type, as
/// `tracing::instrument` does; skipped where the type names `impl Trait` (not allowed in a `let`).
fn return_type_hint(output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => {
            if contains_impl(ty.to_token_stream()) {
                return TokenStream::new();
            }
            ty.to_token_stream()
        }
    };
    let fake = proc_macro2::Ident::new("__mm_fake_return", Span::mixed_site());
    quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

#[cfg(test)]
mod tests;
