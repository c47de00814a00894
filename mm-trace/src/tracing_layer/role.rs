//! What the spans of a callsite are to the layer, by the callsite's name.

/// What spans of a callsite are, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "enabled"), allow(dead_code, reason = "read only by the collector's layer"))]
pub(super) enum Role {
    /// A stage named after the span.
    Stage,
    /// `tick_span(name)`: a tick, like `#[traced_tick]` on a function of that name.
    Tick,
    /// `tick_kind(name)`: a named kind of tick, like `#[traced_tick(name = "...")]`.
    TickKind,
}
