//! The thread-local state, and the one way to reach it ([`local`]).
//!
//! A thread's state is one const-initialised thread local without a destructor (so reaching it
//! is a single TLS-relative access, no lazy-init check): a pointer to the thread's data, a
//! pointer to the tick installed on this thread (if any) with its mode, and one spare tick
//! buffer. A separate thread local with a destructor returns the thread's data slot when the
//! thread exits.

use std::cell::Cell;
use std::ptr;

use super::site::Site;
use super::thread_data::{ThreadData, claim_thread_data, release_thread_data};
use super::tick_state::{Mode, TickState};

/// A thread's collector state.
pub(crate) struct Local {
    thread: Cell<*const ThreadData>,
    tick: Cell<*mut TickState>,
    /// The mode of `tick` (`Mode::Free` when none), kept next to it so that a stage in an
    /// unsampled tick with capture off is decided by one thread-local byte.
    mode: Cell<Mode>,
    spare: Cell<*mut TickState>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            thread: Cell::new(ptr::null()),
            tick: Cell::new(ptr::null_mut()),
            mode: Cell::new(Mode::Free),
            spare: Cell::new(ptr::null_mut()),
        }
    };
    static EXIT: ExitHook = const { ExitHook };
}

struct ExitHook;

impl Drop for ExitHook {
    fn drop(&mut self) {
        let l = local();
        let t = l.thread.replace(ptr::null());
        if !t.is_null() {
            // SAFETY: thread data is never freed.
            release_thread_data(unsafe { &*t });
        }
        let spare = l.spare.replace(ptr::null_mut());
        if !spare.is_null() {
            // SAFETY: the spare is owned by this thread's `Local` alone.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}

/// This thread's `Local`. `LocalKey::with` with a closure this small always inlines to one
/// TLS-relative address computation; the hot path then works on the reference directly, which
/// keeps large closures (that LLVM would call out of line) away from `with`.
#[inline(always)]
pub(crate) fn local() -> &'static Local {
    // SAFETY: `LOCAL` is const-initialised and has no destructor, so it lives as long as the
    // thread and is never moved; callers use the reference on this thread only, within the call
    // (no reference is stored anywhere that could outlive the thread or reach another thread).
    LOCAL.with(|l| unsafe { &*(l as *const Local) })
}

impl Local {
    /// This thread's data slot, claimed on first use (`None` while the thread is exiting).
    #[inline(always)]
    pub(crate) fn thread_data(&self) -> Option<&'static ThreadData> {
        let t = self.thread.get();
        if t.is_null() {
            return self.claim();
        }
        // SAFETY: thread data is never freed.
        Some(unsafe { &*t })
    }

    #[cold]
    #[inline(never)]
    fn claim(&self) -> Option<&'static ThreadData> {
        // Registering the exit hook fails only while this thread's locals are being destroyed;
        // then nothing is recorded rather than leaking a slot.
        EXIT.try_with(|_| ()).ok()?;
        let t = claim_thread_data();
        self.thread.set(t);
        Some(t)
    }

    /// The mode of the tick installed here (`Mode::Free` when none).
    #[inline(always)]
    pub(crate) fn mode(&self) -> Mode {
        self.mode.get()
    }

    /// A tick buffer: the spare one if any, else a new one (once per thread in steady state).
    pub(crate) fn take_state(&self, site: &'static Site) -> Box<TickState> {
        let p = self.spare.replace(ptr::null_mut());
        if p.is_null() {
            Box::new(TickState::new(site))
        } else {
            // SAFETY: the spare pointer came from `Box::into_raw` in `give_state`.
            unsafe { Box::from_raw(p) }
        }
    }

    /// Takes back a tick buffer after its tick ended: it becomes the spare (emptied).
    pub(crate) fn give_state(&self, state: Box<TickState>) {
        state.clear();
        if self.spare.get().is_null() {
            self.spare.set(Box::into_raw(state));
        }
    }

    /// The tick installed on this thread, if any.
    #[inline(always)]
    pub(crate) fn current(&self) -> Option<&TickState> {
        let t = self.tick.get();
        // SAFETY: an installed tick stays alive until it is uninstalled from this thread.
        (!t.is_null()).then(|| unsafe { &*t })
    }

    /// Installs a tick (or a carried lane of one) on this thread. The thread's data slot (its
    /// ordinal and name in traces) is claimed here, before any span of the tick opens: a slot
    /// claimed at span close could be one that a short-lived sibling freed while this thread was
    /// still inside an overlapping span, and both spans would share a Chrome tid.
    pub(crate) fn install(&self, state: &TickState) {
        let _ = self.thread_data();
        state.prev.set(self.tick.get());
        self.set_tick(state as *const TickState as *mut TickState);
    }

    /// Uninstalls `state` if it is the tick installed here, restoring the one before it.
    pub(crate) fn uninstall(&self, state: &TickState) {
        if ptr::eq(self.tick.get(), state) {
            self.set_tick(state.prev.get());
        }
    }

    fn set_tick(&self, tick: *mut TickState) {
        self.tick.set(tick);
        // SAFETY: an installed tick stays alive until it is uninstalled from this thread.
        self.mode.set(if tick.is_null() { Mode::Free } else { unsafe { (*tick).mode } });
    }
}
