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
}

/// What a key stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyInfo {
    pub(crate) kind: KeyKind,
    /// Stage name, or the api of an exchange key.
    pub(crate) name: &'static str,
    /// Exchange verb ("" for stages).
    pub(crate) verb: &'static str,
}

impl KeyInfo {
    /// The name a span of this key has in traces: the stage name, or `"VERB api"`.
    pub(crate) fn span_name(&self) -> String {
        match self.kind {
            KeyKind::Stage => self.name.to_owned(),
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
        let stage = |name| KeyInfo { kind: KeyKind::Stage, name, verb: "" };
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
        if let Some(i) = t.keys.iter().position(|k| k.kind == kind && k.name == name && k.verb == verb) {
            return i as u32;
        }
        let cap = labels::cap();
        let count = match kind {
            KeyKind::Stage => &mut t.stage_count,
            KeyKind::Exchange => &mut t.exchange_count,
        };
        if *count >= cap || t.keys.len() >= MAX_KEYS {
            labels::count_overflow();
            return match kind {
                KeyKind::Stage => OTHER_STAGE,
                KeyKind::Exchange => {
                    // One shared overflow key for exchange requests.
                    if let Some(i) = t.keys.iter().position(|k| k.kind == KeyKind::Exchange && k.name == "other") {
                        i as u32
                    } else if t.keys.len() < MAX_KEYS {
                        t.keys.push(KeyInfo { kind, name: "other", verb: "other" });
                        (t.keys.len() - 1) as u32
                    } else {
                        OTHER_STAGE
                    }
                }
            };
        }
        *count += 1;
        t.keys.push(KeyInfo { kind, name, verb });
        (t.keys.len() - 1) as u32
    })
}

/// Every key registered so far, by key.
pub(crate) fn key_infos() -> Vec<KeyInfo> {
    with_keys(|t| t.keys.clone())
}

/// How many keys are registered.
pub(crate) fn key_count() -> usize {
    with_keys(|t| t.keys.len())
}
