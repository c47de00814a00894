//! This thread's entered spans, innermost last (every layer's, told apart by their table): what
//! an exit gives back, the parent of a span made here, and the lanes held between an enter and
//! its exit.
//!
//! One const thread local holding a pointer (no destructor, so reaching it is one TLS-relative
//! load, as the collector's own `Local`), and a second one with a destructor that frees the stack
//! when the thread exits, touched once per thread.

use std::cell::Cell;
use std::ptr;

use super::carrier::Held;
use super::table::Owned;
use crate::collector::bridge::Lane;

/// What an entry's enter did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Made a span of a tick the open one; `saved` is the open span it replaced.
    Span,
    /// Installed the tick a `tick_span` began.
    Tick,
    /// Nothing in a tick here (outside any tick, off, or the tick is elsewhere).
    Plain,
}

/// One enter.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) table: usize,
    pub(super) id: u64,
    pub(super) slot: u32,
    pub(super) saved: u32,
    pub(super) kind: Kind,
    /// A lane is held for it in `Stack::lanes`.
    pub(super) lane: bool,
}

/// The span last made, or last exited, on this thread: its close or first enter usually comes
/// next, and then finds its slot without a lookup.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Last {
    pub(super) table: usize,
    pub(super) id: u64,
    pub(super) slot: u32,
}

impl Last {
    /// `slot` of a span made here that the layer keeps no slot for.
    pub(super) const NOT_KEPT: u32 = u32::MAX;
}

#[derive(Default)]
pub(super) struct Stack {
    pub(super) entries: Vec<Entry>,
    /// Lanes held by entries, by the entry's span id and table (rare: spans of a tick entered on
    /// a thread where it is not installed).
    pub(super) lanes: Vec<(usize, u64, Lane)>,
    pub(super) last: Last,
    /// This thread's carrier (for the tick it last made spans in) and its token.
    pub(super) held: Held,
    /// Regions of span tables this thread owns (given up when it exits).
    pub(super) owned: Vec<Owned>,
}

impl Stack {
    /// The innermost entry of `table`.
    #[inline]
    pub(super) fn top(&self, table: usize) -> Option<&Entry> {
        match self.entries.last() {
            Some(e) if e.table == table => Some(e),
            Some(_) => self.entries.iter().rev().find(|e| e.table == table),
            None => None,
        }
    }

    /// Removes the innermost entry of span `id` of `table` (exits are innermost first, but need
    /// not be).
    #[inline]
    pub(super) fn pop(&mut self, table: usize, id: u64) -> Option<Entry> {
        match self.entries.last() {
            Some(e) if e.id == id && e.table == table => self.entries.pop(),
            _ => {
                let i = self.entries.iter().rposition(|e| e.id == id && e.table == table)?;
                Some(self.entries.remove(i))
            }
        }
    }

    /// Takes the lane held for the entry of span `id` of `table`.
    pub(super) fn take_lane(&mut self, table: usize, id: u64) -> Option<Lane> {
        let i = self.lanes.iter().rposition(|(t, i, _)| *t == table && *i == id)?;
        Some(self.lanes.remove(i).2)
    }
}

thread_local! {
    static STACK: Cell<*mut Stack> = const { Cell::new(ptr::null_mut()) };
    static OWNER: Owner = const { Owner };
}

/// Frees the thread's stack when the thread exits.
struct Owner;

impl Drop for Owner {
    fn drop(&mut self) {
        let p = STACK.with(|s| s.replace(ptr::null_mut()));
        if !p.is_null() {
            // SAFETY: made by `Box::into_raw` in `make`; nothing else frees it, and no `with`
            // call is running on this thread (thread locals are being destroyed).
            let mut stack = unsafe { Box::from_raw(p) };
            stack.held.retire();
            let token = stack.held.token();
            stack.owned.drain(..).for_each(|owned| owned.release(token));
        }
    }
}

/// Runs `f` on this thread's stack (`None` while the thread is exiting). `f` must not call into
/// `tracing` or anything that could reach this layer again (it holds the stack mutably): lanes
/// and ticks are taken out and dropped after it returns.
#[inline]
pub(super) fn with<R>(f: impl FnOnce(&mut Stack) -> R) -> Option<R> {
    let mut p = STACK.with(Cell::get);
    if p.is_null() {
        p = make()?;
    }
    // SAFETY: the stack is this thread's alone, freed only by `Owner` at thread exit; callbacks of
    // a layer do not nest on one thread while `f` runs (see above), so this is the only reference.
    Some(f(unsafe { &mut *p }))
}

#[cold]
#[inline(never)]
fn make() -> Option<*mut Stack> {
    // Registering the owner fails only while the thread's locals are being destroyed.
    OWNER.try_with(|_| ()).ok()?;
    let p = Box::into_raw(Box::<Stack>::default());
    STACK.with(|s| s.set(p));
    Some(p)
}
