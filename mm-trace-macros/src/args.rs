//! The arguments of each attribute: one parser per attribute, every mistake reported with the
//! offending token's span and what to write instead (all mistakes at once).

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

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

/// Whether `Err` outcomes are counted (`err = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errors {
    /// Counted when the function's return type is written as a `Result`.
    Auto,
    /// `err = true`: counted; the function must return a `Result`.
    On,
    /// `err = false`: never counted.
    Off,
}

/// What a call site is recorded as.
#[derive(Clone)]
pub enum Args {
    /// `#[stage]` (name `None`: the function's name) or `#[stage("name")]`.
    Stage { name: Option<String>, errors: Errors },
    /// `#[traced_tick]` or `#[traced_tick(name = "router")]` (name `None`: unnamed, the
    /// process's default tick kind).
    Tick { name: Option<String>, errors: Errors, parent: Option<Expr> },
    /// `#[exchange_req(verb = "POST", api = "order", venue = self.venue())]`: labels beyond
    /// `verb` and `api` take their value from an expression evaluated per call.
    Exchange { verb: String, api: String, labels: Vec<(String, Expr)>, errors: Errors },
}

/// Parses the attribute's arguments; every mistake found is in the one error returned.
pub fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<Args> {
    let parser = |input: ParseStream| {
        let list = parse_list(kind, input)?;
        match kind {
            Kind::Stage => stage(list),
            Kind::Tick => tick(list),
            Kind::Exchange => exchange(list),
        }
    };
    parser.parse2(tokens)
}

const STAGE_EXAMPLE: &str = "#[stage(\"fetch_md\")]";
const TICK_EXAMPLE: &str = "#[traced_tick(name = \"router\")]";
const EXCHANGE_EXAMPLE: &str = "#[exchange_req(verb = \"POST\", api = \"order\")]";

/// The arguments as written: an optional leading string (the stage name) and `key = value` pairs.
struct List {
    name: Option<LitStr>,
    pairs: Vec<(Ident, Expr)>,
    errors: Option<syn::Error>,
}

fn parse_list(kind: Kind, input: ParseStream) -> syn::Result<List> {
    let mut list = List { name: None, pairs: Vec::new(), errors: None };
    if kind == Kind::Stage && !input.is_empty() && !(input.peek(Ident) && input.peek2(Token![=])) {
        if input.peek(LitStr) {
            list.name = Some(input.parse()?);
        } else if input.peek(Ident) {
            let ident: Ident = input.parse()?;
            let text = ident.to_string();
            let message =
                if text.len() > 1 && text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                    format!(
                        "the stage name must be a string literal: `{ident}` looks like a const, and a stage is named \
                     at compile time in the attribute itself; write #[stage(\"{}\")]",
                        text.to_lowercase()
                    )
                } else {
                    format!("the stage name must be a string literal: write #[stage(\"{ident}\")]")
                };
            return Err(syn::Error::new(ident.span(), message));
        } else if input.peek(Lit) {
            let lit: Lit = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                format!("the stage name must be a string literal, e.g. {STAGE_EXAMPLE}"),
            ));
        } else {
            let tt: proc_macro2::TokenTree = input.parse()?;
            return Err(syn::Error::new(
                tt.span(),
                format!("expected the stage name as a string literal, e.g. {STAGE_EXAMPLE}"),
            ));
        }
        if input.is_empty() {
            return Ok(list);
        }
        if let Err(e) = input.parse::<Token![,]>() {
            return Err(syn::Error::new(
                e.span(),
                format!(
                    "unexpected tokens after the stage name: write e.g. {STAGE_EXAMPLE} or #[stage(\"fetch_md\", err = false)]"
                ),
            ));
        }
    }
    let example = match kind {
        Kind::Stage => STAGE_EXAMPLE,
        Kind::Tick => TICK_EXAMPLE,
        Kind::Exchange => EXCHANGE_EXAMPLE,
    };
    while !input.is_empty() {
        let key: Ident = match input.parse() {
            Ok(key) => key,
            Err(_) => {
                let tt: proc_macro2::TokenTree = input.parse()?;
                let message = match kind {
                    Kind::Stage => format!(
                        "unexpected argument: #[stage] takes the stage name and `err = false`, e.g. {STAGE_EXAMPLE}"
                    ),
                    _ => format!("expected `name = value`, e.g. {example}"),
                };
                push(&mut list.errors, syn::Error::new(tt.span(), message));
                input.parse::<TokenStream>()?;
                break;
            }
        };
        if !input.peek(Token![=]) {
            push(&mut list.errors, syn::Error::new(key.span(), format!("expected `{key} = ...`, e.g. {example}")));
            input.parse::<TokenStream>()?;
            break;
        }
        input.parse::<Token![=]>()?;
        match input.parse::<Expr>() {
            Ok(value) => list.pairs.push((key, value)),
            Err(e) => {
                push(
                    &mut list.errors,
                    syn::Error::new(e.span(), format!("expected a value for `{key}`, e.g. {example}")),
                );
                input.parse::<TokenStream>()?;
                break;
            }
        }
        if input.is_empty() {
            break;
        }
        if let Err(e) = input.parse::<Token![,]>() {
            push(
                &mut list.errors,
                syn::Error::new(e.span(), format!("expected `,` between arguments, e.g. {example}")),
            );
            input.parse::<TokenStream>()?;
            break;
        }
    }
    Ok(list)
}

/// A string literal value, checked like a name.
fn string_value(key: &Ident, value: &Expr, example: &str, errors: &mut Option<syn::Error>) -> Option<String> {
    match value {
        Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }) => match check_name(lit, &format!("`{key}`"), example) {
            Ok(()) => Some(lit.value()),
            Err(e) => {
                push(errors, e);
                None
            }
        },
        other => {
            push(errors, syn::Error::new_spanned(other, format!("`{key}` must be a string literal, e.g. {example}")));
            None
        }
    }
}

/// The value of `err = true|false`.
fn errors_value(value: &Expr, errors: &mut Option<syn::Error>) -> Errors {
    match value {
        Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) => {
            if b.value {
                Errors::On
            } else {
                Errors::Off
            }
        }
        other => {
            push(
                errors,
                syn::Error::new_spanned(
                    other,
                    "`err` must be `true` or `false`: `err = false` stops counting `Err` returns, `err = true` \
                     counts them for a `Result` the attribute cannot see (e.g. behind a type alias)",
                ),
            );
            Errors::Auto
        }
    }
}

/// Reports a key given twice; `true` if `key` was seen before.
fn duplicate(seen: &mut Vec<String>, key: &Ident, example: &str, errors: &mut Option<syn::Error>) -> bool {
    let text = key.to_string();
    if seen.contains(&text) {
        push(errors, syn::Error::new(key.span(), format!("duplicate argument `{key}`: give it once, e.g. {example}")));
        return true;
    }
    seen.push(text);
    false
}

fn stage(list: List) -> syn::Result<Args> {
    let mut errors = list.errors;
    let name = match &list.name {
        Some(lit) => match check_name(lit, "stage name", STAGE_EXAMPLE) {
            Ok(()) => Some(lit.value()),
            Err(e) => {
                push(&mut errors, e);
                None
            }
        },
        None => None,
    };
    let mut err = Errors::Auto;
    let mut seen = Vec::new();
    for (key, value) in &list.pairs {
        if duplicate(&mut seen, key, STAGE_EXAMPLE, &mut errors) {
            continue;
        }
        match key.to_string().as_str() {
            "err" => err = errors_value(value, &mut errors),
            _ => push(
                &mut errors,
                syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{key}`: #[stage] takes the stage name as a string, e.g. {STAGE_EXAMPLE} \
                         (or nothing to use the function's name), and `err = false`"
                    ),
                ),
            ),
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(Args::Stage { name, errors: err }),
    }
}

fn tick(list: List) -> syn::Result<Args> {
    let mut errors = list.errors;
    let mut name = None;
    let mut err = Errors::Auto;
    let mut parent = None;
    let mut seen = Vec::new();
    for (key, value) in &list.pairs {
        if duplicate(&mut seen, key, TICK_EXAMPLE, &mut errors) {
            continue;
        }
        match key.to_string().as_str() {
            "name" => name = string_value(key, value, TICK_EXAMPLE, &mut errors),
            "err" => err = errors_value(value, &mut errors),
            "parent" => match value {
                Expr::Lit(ExprLit { lit, .. }) if !matches!(lit, Lit::Str(_)) => push(
                    &mut errors,
                    syn::Error::new_spanned(
                        lit,
                        "`parent` takes the incoming W3C traceparent: an expression giving `&str`, `String` or an \
                         `Option` of either, e.g. #[traced_tick(parent = req.header(\"traceparent\"))]",
                    ),
                ),
                value => parent = Some(value.clone()),
            },
            _ => push(
                &mut errors,
                syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{key}`: #[traced_tick] takes `name = \"...\"`, `parent = <traceparent>` \
                         and `err = false`, e.g. {TICK_EXAMPLE}; sampling and the deadline are set in TraceConfig \
                         (`deadline_ms`, or `ticks.<name>.deadline_ms` for a named tick)"
                    ),
                ),
            ),
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(Args::Tick { name, errors: err, parent }),
    }
}

/// Labels a run-time label may not take: the exposition's own and Prometheus' reserved ones.
const RESERVED_LABELS: &[&str] = &["le", "quantile", "stage", "verb", "api", "tick"];

fn exchange(list: List) -> syn::Result<Args> {
    let mut errors = list.errors;
    let (mut verb, mut api) = (None, None);
    let mut labels = Vec::new();
    let mut err = Errors::Auto;
    let mut seen = Vec::new();
    for (key, value) in &list.pairs {
        if duplicate(&mut seen, key, EXCHANGE_EXAMPLE, &mut errors) {
            continue;
        }
        match key.to_string().as_str() {
            "verb" => verb = Some(string_value(key, value, EXCHANGE_EXAMPLE, &mut errors)),
            "api" => api = Some(string_value(key, value, EXCHANGE_EXAMPLE, &mut errors)),
            "err" => err = errors_value(value, &mut errors),
            label => {
                if label.starts_with("__") || RESERVED_LABELS.contains(&label) || label.starts_with("r#") {
                    push(
                        &mut errors,
                        syn::Error::new(
                            key.span(),
                            format!(
                                "`{key}` cannot be a label of #[exchange_req]: `le`, `quantile`, `stage`, `verb`, \
                                 `api`, `tick` and names starting with `__` are taken; name it e.g. `venue = ...`"
                            ),
                        ),
                    );
                } else {
                    labels.push((label.to_owned(), value.clone()));
                }
            }
        }
    }
    // Any other name is a run-time label, so a misspelled `verb` or `api` shows as missing:
    // point at the label that looks like it.
    for (wanted, given) in [("verb", verb.is_some()), ("api", api.is_some())] {
        if given {
            continue;
        }
        if let Some((key, _)) = list.pairs.iter().find(|(k, _)| close_to(&k.to_string(), wanted)) {
            push(
                &mut errors,
                syn::Error::new(
                    key.span(),
                    format!(
                        "#[exchange_req] needs `{wanted}`: did you mean `{wanted}` instead of `{key}`? (names other \
                         than `verb`, `api` and `err` are run-time labels, e.g. `venue = self.venue()`)"
                    ),
                ),
            );
            if wanted == "verb" {
                verb = Some(None);
            } else {
                api = Some(None);
            }
            labels.retain(|(n, _)| key != n.as_str());
        }
    }
    let missing: Vec<&str> =
        [("verb", verb.is_none()), ("api", api.is_none())].into_iter().filter_map(|(k, m)| m.then_some(k)).collect();
    if !missing.is_empty() {
        let what = missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ");
        push(
            &mut errors,
            syn::Error::new(Span::call_site(), format!("#[exchange_req] needs {what}: write {EXCHANGE_EXAMPLE}")),
        );
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(Args::Exchange {
            verb: verb.flatten().unwrap_or_default(),
            api: api.flatten().unwrap_or_default(),
            labels,
            errors: err,
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

/// Whether `given` looks like a misspelling of `wanted` (case aside, at most two edits).
fn close_to(given: &str, wanted: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (given.to_lowercase().chars().collect(), wanted.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            row.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()] <= 2 && given != wanted
}

fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}
