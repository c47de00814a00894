//! placeholder (being written)
use proc_macro::TokenStream;
/// stage
#[proc_macro_attribute]
pub fn stage(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// tick
#[proc_macro_attribute]
pub fn traced_tick(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// exchange
#[proc_macro_attribute]
pub fn exchange_req(_a: TokenStream, i: TokenStream) -> TokenStream { i }
