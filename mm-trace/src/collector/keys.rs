//! Metric keys: one per stage name and per exchange `(verb, api)`, registered once per call site
//! on a cold path (`Site::key`), then an index into every thread's cells.

use std::sync::Mutex;

use super::labels;

/// Most distinct metric keys (stage names plus exchange `(verb, api)` pairs) in one process.
pub(crate) const MAX_KEYS: usize = 1024;
const _: () = assert!(MAX_KEYS.is_power_of_two());
/// Key of `tick_total`.
pub(crate) const TICK_TOTAL: u32 = 1;
/// Key that every stage key past `MAX_KEYS` or the cardinality cap folds into.
pub(crate) const OTHER_STAGE: u32 = 2;
/// Key used by the overhead calibration; never exported.
pub(crate) const CALIBRATION: u32 = 3;
/// Name of the calibration key's stage.
pub(crate) const CALIBRATION_NAME: &str = "__mm_calibration";
const FIRST_FREE_KEY: u32 = 4;
const _: () = assert!(FIRST_FREE_KEY as usize <= MAX_KEYS);

/// What a key measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KeyKind {
    Stage,
    Exchange,
    /// The `tick_total` of a named kind of tick (`#[traced_tick(name = "...")]`); the unnamed
    /// kind's is `TICK_TOTAL`, a stage.
    Tick,
}

/// Run-time labels of a key beyond `verb`/`api`: `(name, value)` pairs, leaked once per
/// distinct value (bounded by the cardinality cap).
pub(crate) type Labels = &'static [(&'static str, &'static str)];

/// What a key stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyInfo {
    pub(crate) kind: KeyKind,
    /// Stage name, or the api of an exchange key.
    pub(crate) name: &'static str,
    /// Exchange verb ("" for stages).
    pub(crate) verb: &'static str,
    /// Run-time labels (exchange requests with labels beyond verb and api).
    pub(crate) labels: Labels,
}

impl KeyInfo {
    /// The name a span of this key has in traces: the stage name, or `"VERB api"`.
    pub(crate) fn span_name(&self) -> String {
        match self.kind {
            KeyKind::Stage | KeyKind::Tick => self.name.to_owned(),
            KeyKind::Exchange => format!("{} {}", self.verb, self.name),
        }
    }
}

struct KeyTable {
    keys: Vec<KeyInfo>,
    stage_count: usize,
    exchange_count: usize,
}

/// Registration happens once per call site, on a cold path; the lock is never taken per span.
static KEYS: Mutex<Option<KeyTable>> = Mutex::new(None);

fn with_keys<R>(f: impl FnOnce(&mut KeyTable) -> R) -> R {
    let mut guard = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let table = guard.get_or_insert_with(|| {
        let stage = |name| KeyInfo { kind: KeyKind::Stage, name, verb: "", labels: &[] };
        KeyTable {
            keys: vec![stage(""), stage("tick_total"), stage("other"), stage(CALIBRATION_NAME)],
            stage_count: 0,
            exchange_count: 0,
        }
    });
    f(table)
}

/// The key of `(kind, verb, name)`, registering it on first use.
#[cold]
pub(crate) fn register_key(kind: KeyKind, verb: &'static str, name: &'static str) -> u32 {
    if kind == KeyKind::Stage && name == "tick_total" {
        return TICK_TOTAL;
    }
    with_keys(|t| {
        if let Some(i) = t.find(kind, verb, name, &[]) {
            return i;
        }
        let cap = labels::cap();
        let count = match kind {
            KeyKind::Stage | KeyKind::Tick => &mut t.stage_count,
            KeyKind::Exchange => &mut t.exchange_count,
        };
        if *count >= cap || t.keys.len() >= MAX_KEYS {
            labels::count_overflow();
            return match kind {
                KeyKind::Stage | KeyKind::Tick => OTHER_STAGE,
                // One shared overflow key for exchange requests.
                KeyKind::Exchange => t.find_or_push(KeyInfo { kind, name: "other", verb: "other", labels: &[] }),
            };
        }
        *count += 1;
        t.push(KeyInfo { kind, name, verb, labels: &[] })
    })
}

/// The key of an exchange request `(verb, api)` with run-time label `values` (one per name of
/// `names`), registering it on first use: at most the cardinality cap of distinct value sets per
/// `(verb, api)`; past it, the values fold into `other` (counted as label overflow).
#[cold]
pub(crate) fn register_labeled_key(
    verb: &'static str,
    api: &'static str,
    names: &'static [&'static str],
    values: &[&str],
) -> (u32, Labels) {
    with_keys(|t| {
        let matches = |k: &KeyInfo| {
            k.kind == KeyKind::Exchange
                && k.verb == verb
                && k.name == api
                && k.labels.len() == names.len()
                && k.labels.iter().zip(names.iter().zip(values)).all(|((n, v), (n2, v2))| n == n2 && v == v2)
        };
        if let Some(i) = t.keys.iter().position(matches) {
            return (i as u32, t.keys[i].labels);
        }
        let group = t
            .keys
            .iter()
            .filter(|k| k.kind == KeyKind::Exchange && k.verb == verb && k.name == api && !k.labels.is_empty())
            .filter(|k| k.labels.iter().any(|(_, v)| *v != "other"))
            .count();
        let overflow = group >= labels::cap() || t.keys.len() + 1 >= MAX_KEYS;
        if overflow {
            labels::count_overflow();
        }
        let labels: Labels = {
            let pairs: Vec<(&'static str, &'static str)> = names
                .iter()
                .zip(values)
                .map(|(n, v)| (*n, if overflow { "other" } else { &*Box::leak(Box::<str>::from(*v)) }))
                .collect();
            if overflow
                && let Some(i) = t.keys.iter().position(|k| {
                    k.kind == KeyKind::Exchange && k.verb == verb && k.name == api && k.labels == pairs.as_slice()
                })
            {
                return (i as u32, t.keys[i].labels);
            }
            Box::leak(pairs.into_boxed_slice())
        };
        if t.keys.len() >= MAX_KEYS {
            return (OTHER_STAGE, &[]);
        }
        (t.push(KeyInfo { kind: KeyKind::Exchange, name: api, verb, labels }), labels)
    })
}

impl KeyTable {
    fn find(&self, kind: KeyKind, verb: &str, name: &str, labels: Labels) -> Option<u32> {
        self.keys
            .iter()
            .position(|k| k.kind == kind && k.name == name && k.verb == verb && k.labels == labels)
            .map(|i| i as u32)
    }

    fn find_or_push(&mut self, info: KeyInfo) -> u32 {
        match self.find(info.kind, info.verb, info.name, info.labels) {
            Some(i) => i,
            None if self.keys.len() < MAX_KEYS => self.push(info),
            None => OTHER_STAGE,
        }
    }

    fn push(&mut self, info: KeyInfo) -> u32 {
        self.keys.push(info);
        (self.keys.len() - 1) as u32
    }
}

/// Every key registered so far, by key.
pub(crate) fn key_infos() -> Vec<KeyInfo> {
    with_keys(|t| t.keys.clone())
}

/// How many keys are registered.
pub(crate) fn key_count() -> usize {
    with_keys(|t| t.keys.len())
}
