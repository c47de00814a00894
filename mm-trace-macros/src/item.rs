//! The annotated item: a function with a body, kept as written. Rejects what cannot be timed.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Signature, Token, Visibility, braced};

use crate::args::Kind;

/// A function with a body, as written: free fn, inherent or trait impl method, or a trait's
/// provided method. The body is kept as tokens.
pub struct FnItem {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub defaultness: Option<Token![default]>,
    pub sig: Signature,
    pub inner_attrs: Vec<Attribute>,
    pub body: TokenStream,
    pub brace_span: Span,
}

/// Why an item cannot be instrumented; the error is spanned on the offending token.
pub fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<FnItem> {
    let parser = |input: ParseStream| parse_item(kind, input);
    parser.parse2(tokens)
}

fn parse_item(kind: Kind, input: ParseStream) -> syn::Result<FnItem> {
    let attr = kind.attr();
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let defaultness: Option<Token![default]> = input.parse()?;
    let fork = input.fork();
    if fork.parse::<Signature>().is_err() {
        return Err(not_a_fn(kind, input));
    }
    let sig: Signature = input.parse()?;
    if let Some(const_token) = sig.constness {
        return Err(syn::Error::new(
            const_token.span,
            format!(
                "{attr} cannot time a `const fn` (it may run at compile time, where there is no \
                 clock): remove `const`, or time the call site with `mm_trace::in_stage!`"
            ),
        ));
    }
    if input.peek(Token![;]) {
        let semi: Token![;] = input.parse()?;
        return Err(syn::Error::new(
            semi.span,
            format!(
                "{attr} needs a function body to time: put it on the method's implementation, not \
                 on its declaration"
            ),
        ));
    }
    let content;
    let brace = braced!(content in input);
    let inner_attrs = content.call(Attribute::parse_inner)?;
    let body: TokenStream = content.parse()?;
    if !input.is_empty() {
        return Err(syn::Error::new(input.span(), format!("{attr}: unexpected tokens after the function")));
    }
    Ok(FnItem { attrs, vis, defaultness, sig, inner_attrs, body, brace_span: brace.span.join() })
}

/// The error for a non-fn item, spanned on its keyword (`struct`, `impl`, `mod`, ...).
fn not_a_fn(kind: Kind, input: ParseStream) -> syn::Error {
    let attr = kind.attr();
    let found = input.fork().parse::<TokenTree>().ok();
    let (span, what) = match &found {
        Some(TokenTree::Ident(ident)) => (ident.span(), format!("`{ident}`")),
        Some(tt) => (tt.span(), "this item".to_owned()),
        None => (Span::call_site(), "nothing".to_owned()),
    };
    let hint = match kind {
        Kind::Stage => "; to time a block inside a function use `mm_trace::in_stage!(\"name\", { ... })`",
        _ => "",
    };
    syn::Error::new(span, format!("{attr} can only be put on a function with a body, found {what}{hint}"))
}

impl FnItem {
    /// Re-emits attributes, visibility and signature as written around a new body.
    pub fn with_body(&self, body: TokenStream) -> TokenStream {
        let mut out = TokenStream::new();
        for attr in &self.attrs {
            attr.to_tokens(&mut out);
        }
        self.vis.to_tokens(&mut out);
        self.defaultness.to_tokens(&mut out);
        self.sig.to_tokens(&mut out);
        let mut inner = TokenStream::new();
        for attr in &self.inner_attrs {
            attr.to_tokens(&mut inner);
        }
        inner.extend(body);
        let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, inner);
        group.set_span(self.brace_span);
        out.extend([TokenTree::Group(group)]);
        out
    }
}
