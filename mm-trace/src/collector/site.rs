//! Call-site statics: one per instrumented function or section.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::keys::{KeyKind, TICK_TOTAL, register_key};

/// A call site. The macros put one in a `static` next to each instrumented body; its metric key
/// is resolved once on a cold path, then every span costs one relaxed load to find it.
#[derive(Debug)]
pub struct Site {
    kind: KeyKind,
    name: &'static str,
    verb: &'static str,
    /// The names of an exchange request's run-time labels (empty otherwise).
    label_names: &'static [&'static str],
    /// `Some` for a named kind of tick: its name, which has a `tick_total` and deadline of its own.
    tick_kind: Option<&'static str>,
    key: AtomicU32,
    total_key: AtomicU32,
}

impl Site {
    const fn new(kind: KeyKind, name: &'static str, verb: &'static str) -> Site {
        Site {
            kind,
            name,
            verb,
            label_names: &[],
            tick_kind: None,
            key: AtomicU32::new(0),
            total_key: AtomicU32::new(0),
        }
    }

    /// A `#[stage]` site.
    pub const fn stage(name: &'static str) -> Site {
        Site::new(KeyKind::Stage, name, "")
    }

    /// An `#[exchange_req(verb, api)]` site.
    pub const fn exchange(verb: &'static str, api: &'static str) -> Site {
        Site::new(KeyKind::Exchange, api, verb)
    }

    /// An `#[exchange_req(verb, api, name = expr, ..)]` site: each span is recorded under the
    /// site [`Site::labeled`] gives for its values.
    pub const fn exchange_labeled(verb: &'static str, api: &'static str, label_names: &'static [&'static str]) -> Site {
        Site { label_names, ..Site::new(KeyKind::Exchange, api, verb) }
    }

    /// A `#[traced_tick]` site; `name` names the tick in traces (and the stage of a nested tick).
    pub const fn tick(name: &'static str) -> Site {
        Site::stage(name)
    }

    /// A `#[traced_tick(name = "...")]` site: a kind of tick with its own `tick_total`, deadline
    /// (`trace.ticks.<name>.deadline_ms`) and miss counter.
    pub const fn tick_kind(name: &'static str) -> Site {
        Site { tick_kind: Some(name), ..Site::stage(name) }
    }

    /// The site's name (the api for exchange sites).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A site of its own for one set of label values, recording under `key` (the key of
    /// those values; such sites are leaked once each, bounded by the cap).
    pub(crate) fn with_key(&'static self, key: u32) -> Site {
        Site { key: AtomicU32::new(key), ..Site::new(self.kind, self.name, self.verb) }
    }

    /// The names of the run-time labels.
    pub(crate) fn label_names(&self) -> &'static [&'static str] {
        self.label_names
    }

    /// The exchange verb.
    pub(crate) fn verb(&self) -> &'static str {
        self.verb
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

    /// The key of this tick site's `tick_total`: `TICK_TOTAL` for the unnamed kind.
    #[inline]
    pub(crate) fn total_key(&self) -> u32 {
        let Some(kind) = self.tick_kind else { return TICK_TOTAL };
        let k = self.total_key.load(Relaxed);
        if k != 0 {
            return k;
        }
        let k = register_key(KeyKind::Tick, "", kind);
        super::tick_kinds::registered(k, kind);
        self.total_key.store(k, Relaxed);
        k
    }
}
