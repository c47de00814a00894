//! Call-site statics: one per instrumented function or section.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::keys::{KeyKind, register_key};

/// A call site. The macros put one in a `static` next to each instrumented body; its metric key
/// is resolved once on a cold path, then every span costs one relaxed load to find it.
#[derive(Debug)]
pub struct Site {
    kind: KeyKind,
    name: &'static str,
    verb: &'static str,
    key: AtomicU32,
}

impl Site {
    /// A `#[stage]` site.
    pub const fn stage(name: &'static str) -> Site {
        Site { kind: KeyKind::Stage, name, verb: "", key: AtomicU32::new(0) }
    }

    /// An `#[exchange_req(verb, api)]` site.
    pub const fn exchange(verb: &'static str, api: &'static str) -> Site {
        Site { kind: KeyKind::Exchange, name: api, verb, key: AtomicU32::new(0) }
    }

    /// A `#[traced_tick]` site; `name` names the tick in traces (and the stage of a nested tick).
    pub const fn tick(name: &'static str) -> Site {
        Site::stage(name)
    }

    /// The site's name (the api for exchange sites).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether this is an exchange-request site (recorded in every tick, sampled or not).
    #[inline(always)]
    pub(crate) fn is_exchange(&self) -> bool {
        matches!(self.kind, KeyKind::Exchange)
    }

    /// The metric key. Relaxed is enough: the key is an index into tables that are complete
    /// before `register_key` returns, and every thread that registers gets the same value.
    #[inline(always)]
    pub(crate) fn key(&self) -> u32 {
        let k = self.key.load(Relaxed);
        if k != 0 { k } else { self.register() }
    }

    #[cold]
    #[inline(never)]
    fn register(&self) -> u32 {
        let k = register_key(self.kind, self.verb, self.name);
        self.key.store(k, Relaxed);
        k
    }
}
