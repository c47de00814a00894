//! Span callsites resolved once: `register_callsite` gives each span callsite its `Site` (a
//! stage named after the span, or a tick for `tick_span` names), and making a span finds it again
//! with a few loads, no lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::*};

use tracing::Metadata;

use super::role::Role;
use crate::collector::bridge::Site;

/// Low bit of an entry's site word: spans of the callsite are ticks (`Role::Tick`, `TickKind`).
const TICK_BIT: usize = 1;

struct Entry {
    meta: AtomicUsize,
    site: AtomicUsize,
}

/// The callsites of one layer: an open-addressed table of metadata addresses, written under a
/// lock on the cold path (`register`), read without one. Kept at most three quarters full, so a
/// probe always ends; callsites past that go to `overflow` (behind a lock: a process with that
/// many span callsites pays it per span of those only).
pub(super) struct Callsites {
    entries: Box<[Entry]>,
    mask: usize,
    write: Mutex<usize>,
    overflow: Mutex<HashMap<usize, usize>>,
}

impl Callsites {
    pub(super) fn new(capacity: usize) -> Callsites {
        let n = capacity.next_power_of_two().max(16);
        let entries = (0..n).map(|_| Entry { meta: AtomicUsize::new(0), site: AtomicUsize::new(0) }).collect();
        Callsites { entries, mask: n - 1, write: Mutex::new(0), overflow: Mutex::new(HashMap::new()) }
    }

    #[inline]
    fn home(&self, key: usize) -> usize {
        ((key as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & self.mask
    }

    /// The site of a registered span callsite and whether its spans are ticks.
    #[inline]
    pub(super) fn get(&self, meta: &'static Metadata<'static>) -> Option<(&'static Site, bool)> {
        let key = meta as *const Metadata<'static> as usize;
        let mut i = self.home(key);
        loop {
            // Acquire: pairs with the Release in `register`, after which `site` is set.
            let m = self.entries[i].meta.load(Acquire);
            if m == key {
                return Some(decode(self.entries[i].site.load(Relaxed)));
            }
            if m == 0 {
                return self.get_overflow(key);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[cold]
    fn get_overflow(&self, key: usize) -> Option<(&'static Site, bool)> {
        let overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        overflow.get(&key).map(|&word| decode(word))
    }

    /// Registers a span callsite (again: `tracing` calls `register_callsite` once per dispatcher
    /// that exists when the callsite is first hit, and again when interest is rebuilt).
    #[cold]
    pub(super) fn register(&self, meta: &'static Metadata<'static>, role: Role) -> (&'static Site, bool) {
        let key = meta as *const Metadata<'static> as usize;
        let mut count = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = self.get(meta) {
            return found;
        }
        let word = site_for(meta, role) as *const Site as usize | usize::from(role != Role::Stage);
        if (*count + 1) * 4 > self.entries.len() * 3 {
            self.overflow.lock().unwrap_or_else(|e| e.into_inner()).insert(key, word);
            return decode(word);
        }
        let mut i = self.home(key);
        while self.entries[i].meta.load(Relaxed) != 0 {
            i = (i + 1) & self.mask;
        }
        self.entries[i].site.store(word, Relaxed);
        self.entries[i].meta.store(key, Release);
        *count += 1;
        decode(word)
    }
}

fn decode(word: usize) -> (&'static Site, bool) {
    // SAFETY: made in `register` from a leaked `&'static Site` (aligned to 8, so the low bit
    // carries the tick flag).
    (unsafe { &*((word & !TICK_BIT) as *const Site) }, word & TICK_BIT != 0)
}

/// The site of a callsite in a role, leaked once per (callsite, role) in the process: layers made
/// again and again (one per test, say) share them, so they stay bounded by the callsites.
fn site_for(meta: &'static Metadata<'static>, role: Role) -> &'static Site {
    static SITES: Mutex<Option<HashMap<(usize, Role), &'static Site>>> = Mutex::new(None);
    let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let key = (meta as *const Metadata<'static> as usize, role);
    sites.get_or_insert_with(HashMap::new).entry(key).or_insert_with(|| {
        // An empty name would be the collector's reserved key 0.
        let name = if meta.name().is_empty() { "unnamed" } else { meta.name() };
        Box::leak(Box::new(match role {
            Role::Stage => Site::stage(name),
            Role::Tick => Site::tick(name),
            Role::TickKind => Site::tick_kind(name),
        }))
    })
}

const _: () = assert!(std::mem::align_of::<Site>() > TICK_BIT);
