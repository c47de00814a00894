//! The arguments of each attribute: one parser per attribute, every mistake reported with the
//! offending token's span and what to write instead.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitStr, Token};

/// Which attribute is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stage,
    Tick,
    Exchange,
}

impl Kind {
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Stage => "#[stage]",
            Kind::Tick => "#[traced_tick]",
            Kind::Exchange => "#[exchange_req]",
        }
    }
}

/// What a call site is recorded as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Args {
    /// `#[stage]` (name `None`: the function's name) or `#[stage("name")]`.
    Stage { name: Option<String> },
    /// `#[traced_tick]`.
    Tick,
    /// `#[exchange_req(verb = "POST", api = "order")]`.
    Exchange { verb: String, api: String },
}

/// Parses the attribute's arguments; every mistake found is in the one error returned.
pub fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<Args> {
    let parser = |input: ParseStream| match kind {
        Kind::Stage => parse_stage(input),
        Kind::Tick => parse_tick(input),
        Kind::Exchange => parse_exchange(input),
    };
    parser.parse2(tokens)
}

const STAGE_EXAMPLE: &str = "#[stage(\"fetch_md\")]";
const EXCHANGE_EXAMPLE: &str = "#[exchange_req(verb = \"POST\", api = \"order\")]";

fn parse_stage(input: ParseStream) -> syn::Result<Args> {
    if input.is_empty() {
        return Ok(Args::Stage { name: None });
    }
    let lookahead = input.lookahead1();
    let name = if lookahead.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        check_name(&lit, "stage name", STAGE_EXAMPLE)?;
        lit.value()
    } else if input.peek(Ident) && input.peek2(Token![=]) {
        let key: Ident = input.parse()?;
        return Err(syn::Error::new(
            key.span(),
            format!(
                "unknown argument `{key}`: #[stage] takes only the stage name as a string, \
                 e.g. {STAGE_EXAMPLE}, or nothing to use the function's name"
            ),
        ));
    } else if input.peek(Ident) {
        let ident: Ident = input.parse()?;
        return Err(syn::Error::new(
            ident.span(),
            format!("the stage name must be a string literal: write #[stage(\"{ident}\")]"),
        ));
    } else if input.peek(syn::Lit) {
        let lit: syn::Lit = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!("the stage name must be a string literal, e.g. {STAGE_EXAMPLE}"),
        ));
    } else {
        return Err(lookahead.error());
    };
    if input.peek(Token![,]) {
        let comma: Token![,] = input.parse()?;
        if input.is_empty() {
            return Ok(Args::Stage { name: Some(name) });
        }
        let _ = comma;
        return Err(syn::Error::new(
            input.span(),
            format!("unexpected argument: #[stage] takes only the stage name, e.g. {STAGE_EXAMPLE}"),
        ));
    }
    if !input.is_empty() {
        return Err(syn::Error::new(
            input.span(),
            format!("unexpected tokens after the stage name: write e.g. {STAGE_EXAMPLE}"),
        ));
    }
    Ok(Args::Stage { name: Some(name) })
}

fn parse_tick(input: ParseStream) -> syn::Result<Args> {
    if input.is_empty() {
        return Ok(Args::Tick);
    }
    Err(syn::Error::new(
        input.span(),
        "#[traced_tick] takes no arguments: write #[traced_tick] (sampling and the deadline are \
         set in TraceConfig)",
    ))
}

fn parse_exchange(input: ParseStream) -> syn::Result<Args> {
    let mut verb: Option<(Ident, String)> = None;
    let mut api: Option<(Ident, String)> = None;
    let mut errors: Option<syn::Error> = None;
    while !input.is_empty() {
        let key: Ident = match input.parse() {
            Ok(key) => key,
            Err(_) => {
                push(
                    &mut errors,
                    syn::Error::new(
                        input.span(),
                        format!("expected `verb = \"...\"` or `api = \"...\"`, e.g. {EXCHANGE_EXAMPLE}"),
                    ),
                );
                // The rest cannot be read reliably once a key is not an identifier.
                input.parse::<TokenStream>()?;
                break;
            }
        };
        let slot = match key.to_string().as_str() {
            "verb" => Some(&mut verb),
            "api" => Some(&mut api),
            _ => None,
        };
        if !input.peek(Token![=]) {
            push(
                &mut errors,
                syn::Error::new(key.span(), format!("expected `{key} = \"...\"`, e.g. {EXCHANGE_EXAMPLE}")),
            );
            input.parse::<TokenStream>()?;
            break;
        }
        input.parse::<Token![=]>()?;
        let value = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            match check_name(&lit, &format!("`{key}`"), EXCHANGE_EXAMPLE) {
                Ok(()) => Some(lit.value()),
                Err(e) => {
                    push(&mut errors, e);
                    None
                }
            }
        } else {
            let tt: proc_macro2::TokenTree = input.parse()?;
            push(
                &mut errors,
                syn::Error::new(tt.span(), format!("`{key}` must be a string literal, e.g. {EXCHANGE_EXAMPLE}")),
            );
            None
        };
        match slot {
            None => push(
                &mut errors,
                syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{key}`: #[exchange_req] takes `verb` and `api`, e.g. \
                     {EXCHANGE_EXAMPLE}"
                    ),
                ),
            ),
            Some(Some(_)) => push(
                &mut errors,
                syn::Error::new(
                    key.span(),
                    format!("duplicate argument `{key}`: give it once, e.g. {EXCHANGE_EXAMPLE}"),
                ),
            ),
            Some(slot) => {
                if let Some(value) = value {
                    *slot = Some((key, value));
                } else {
                    // Bad value already reported: keep the key as given so it is not also "missing".
                    *slot = Some((key, String::new()));
                }
            }
        }
        if input.is_empty() {
            break;
        }
        if let Err(e) = input.parse::<Token![,]>() {
            push(
                &mut errors,
                syn::Error::new(e.span(), format!("expected `,` between arguments, e.g. {EXCHANGE_EXAMPLE}")),
            );
            input.parse::<TokenStream>()?;
            break;
        }
    }
    let missing: Vec<&str> =
        [("verb", verb.is_none()), ("api", api.is_none())].into_iter().filter_map(|(k, m)| m.then_some(k)).collect();
    if !missing.is_empty() && errors.is_none() {
        let what = missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ");
        push(
            &mut errors,
            syn::Error::new(Span::call_site(), format!("#[exchange_req] needs {what}: write {EXCHANGE_EXAMPLE}")),
        );
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(Args::Exchange {
            verb: verb.map(|v| v.1).unwrap_or_default(),
            api: api.map(|v| v.1).unwrap_or_default(),
        }),
    }
}

/// The rules shared with `mm_trace::__private::check_stage_name` (used by the bang macros):
/// not empty, no whitespace or control characters, at most 128 bytes.
pub fn check_name(lit: &LitStr, what: &str, example: &str) -> syn::Result<()> {
    let value = lit.value();
    let problem = if value.is_empty() {
        Some("must not be empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain whitespace or control characters")
    } else if value.len() > 128 {
        Some("must be at most 128 bytes")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(syn::Error::new(lit.span(), format!("{what} {problem}: write e.g. {example}"))),
        None => Ok(()),
    }
}

fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}
