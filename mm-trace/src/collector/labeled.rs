//! Exchange requests with run-time labels (`#[exchange_req(.., venue = self.venue())]`): each
//! distinct set of values gets a site of its own (its metric key registered once), found per
//! call in a per-thread cache — no lock and no allocation for values this thread has seen.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::keys::register_labeled_key;
use super::site::Site;

/// A set of label values.
type Values = Box<[Box<str>]>;

/// Sites by `(template site address, values)`, process-wide (cold: first use of a value on a
/// thread).
static SITES: Mutex<Vec<(usize, Values, &'static Site)>> = Mutex::new(Vec::new());

/// Most entries one thread caches; past it (a label fed unbounded values: ids, prices) lookups go
/// to the process-wide table, whose values past the cap all share the `other` site.
const THREAD_CACHE: usize = 4096;

type Entries = Vec<(Values, &'static Site)>;

thread_local! {
    static CACHE: RefCell<HashMap<(usize, u64), Entries, BuildHasherDefault<Passthrough>>> =
        RefCell::new(HashMap::default());
}

impl Site {
    /// The site recording spans of this labeled exchange site with run-time label `values`
    /// (one per label name, in order). The first call for a set of values on a thread registers
    /// it (cold); later calls find it in the thread's cache without a lock or an allocation.
    /// Past the cardinality cap the values fold into `other`.
    pub fn labeled(&'static self, values: &[&str]) -> &'static Site {
        site_for(self, values)
    }
}

/// The site of `template` for `values`.
fn site_for(template: &'static Site, values: &[&str]) -> &'static Site {
    let addr = template as *const Site as usize;
    let hash = hash_values(values);
    let hit = CACHE.try_with(|c| {
        let c = c.borrow();
        c.get(&(addr, hash)).and_then(|e| e.iter().find(|(v, _)| same(v, values)).map(|(_, s)| *s))
    });
    if let Ok(Some(site)) = hit {
        return site;
    }
    let site = register(template, addr, values);
    let _ = CACHE.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < THREAD_CACHE {
            c.entry((addr, hash)).or_default().push((boxed(values), site));
        }
    });
    site
}

#[cold]
fn register(template: &'static Site, addr: usize, values: &[&str]) -> &'static Site {
    let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, site)) = sites.iter().find(|(a, v, _)| *a == addr && same(v, values)) {
        return site;
    }
    let (key, labels) = register_labeled_key(template.verb(), template.name(), template.label_names(), values);
    // Past the cap every new value set gets the one `other` key: share its site, and do not
    // remember the values (they are unbounded by then).
    let other = labels.iter().all(|(_, v)| *v == "other") && values.iter().any(|v| *v != "other");
    if other && let Some((_, _, site)) = sites.iter().find(|(a, _, s)| *a == addr && s.key() == key) {
        return site;
    }
    let site: &'static Site = Box::leak(Box::new(template.with_key(key)));
    sites.push((addr, boxed(values), site));
    site
}

fn same(a: &[Box<str>], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| **x == **y)
}

fn boxed(values: &[&str]) -> Values {
    values.iter().map(|v| Box::<str>::from(*v)).collect()
}

/// FNV-1a over the values (a value boundary mixed in), for the cache's buckets.
fn hash_values(values: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The cache's keys are already hashes.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
