//! Named kinds of tick (`#[traced_tick(name = "router")]`): each has a `tick_total` key of its
//! own and a deadline (`trace.ticks.<name>.deadline_ms`, else `deadline_ms`), read per tick with
//! one relaxed load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::keys::{KeyKind, MAX_KEYS, TICK_TOTAL, key_infos};
use super::switches::DEADLINE_NS;

/// Per tick key, its deadline in ns (0: the default `deadline_ms`).
static DEADLINES: [AtomicU64; MAX_KEYS] = [const { AtomicU64::new(0) }; MAX_KEYS];
/// The configured deadlines by kind name (cold: read when a kind registers or config changes).
static CONFIGURED: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// The deadline of the tick kind whose `tick_total` key is `total_key`, ns.
#[inline]
pub(crate) fn deadline_ns(total_key: u32) -> u64 {
    if total_key != TICK_TOTAL {
        let d = DEADLINES[total_key as usize & (MAX_KEYS - 1)].load(Relaxed);
        if d != 0 {
            return d;
        }
    }
    DEADLINE_NS.load(Relaxed)
}

/// Installs the configured deadlines by kind name (`ns`), for kinds registered now and later.
pub(crate) fn configure(deadlines: Vec<(String, u64)>) {
    *CONFIGURED.lock().unwrap_or_else(|e| e.into_inner()) = deadlines;
    for (k, info) in key_infos().iter().enumerate() {
        if info.kind == KeyKind::Tick {
            registered(k as u32, info.name);
        }
    }
}

/// Called when the kind `name` got its key: its configured deadline, if any, takes effect.
pub(crate) fn registered(total_key: u32, name: &str) {
    let configured = CONFIGURED.lock().unwrap_or_else(|e| e.into_inner());
    let ns = configured.iter().find(|(n, _)| n == name).map_or(0, |(_, ns)| *ns);
    DEADLINES[total_key as usize & (MAX_KEYS - 1)].store(ns, Relaxed);
}

/// The deadline in force for kind `total_key`, ms (for the summary).
pub(crate) fn deadline_ms(total_key: u32) -> f64 {
    deadline_ns(total_key) as f64 / 1e6
}
