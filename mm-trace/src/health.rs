//! Every counter the collector keeps, declared once in the table below. From the table come the
//! [`Counter`] index the collector stores counts under (per thread, and process-wide), the
//! public [`Health`] struct, and the `mm_trace_*_total` series of the exposition: adding a
//! health counter is one line here plus the place that counts it.

/// Counts of every [`Counter`], indexed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts(pub(crate) [u64; Counter::COUNT]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; Counter::COUNT])
    }
}

impl std::ops::Index<Counter> for Counts {
    type Output = u64;
    fn index(&self, c: Counter) -> &u64 {
        &self.0[c as usize]
    }
}

impl std::ops::IndexMut<Counter> for Counts {
    fn index_mut(&mut self, c: Counter) -> &mut u64 {
        &mut self.0[c as usize]
    }
}

impl Counts {
    /// `self - base`, counter by counter (never below zero).
    pub(crate) fn since(&self, base: &Counts) -> Counts {
        Counts(std::array::from_fn(|i| self.0[i].saturating_sub(base.0[i])))
    }
}

/// One health counter as the exposition writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HealthSeries {
    /// The metric name, e.g. `mm_trace_spans_dropped_total`.
    pub(crate) metric: &'static str,
    /// The HELP text (the `Health` field's doc).
    pub(crate) help: &'static str,
    /// The count.
    pub(crate) value: u64,
}

macro_rules! counters {
    (
        ticks { $( $(#[doc = $tdoc:literal])* $tvar:ident; )* }
        health { $( $(#[doc = $hdoc:literal])* $hvar:ident => $hfield:ident, $metric:literal; )* }
    ) => {
        /// Every counter of the collector: the counts behind [`crate::Summary`]'s tick counters,
        /// internal bookkeeping, and each [`Health`] counter.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(usize)]
        #[cfg_attr(not(feature = "enabled"), allow(dead_code))]
        pub(crate) enum Counter {
            $( $(#[doc = $tdoc])* $tvar, )*
            $( $(#[doc = $hdoc])* $hvar, )*
        }

        impl Counter {
            /// How many counters there are.
            pub(crate) const COUNT: usize = [$(Counter::$tvar,)* $(Counter::$hvar,)*].len();
        }

        /// The collector's view of itself.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Health {
            $( $(#[doc = $hdoc])* pub $hfield: u64, )*
            /// Estimated share of tick time spent inside mm-trace (0.0..=1.0).
            pub overhead_ratio: f64,
            /// Estimated cost of one recorded span on this machine, ns.
            pub span_cost_ns: f64,
            /// Spans recorded into histograms.
            pub spans_recorded: u64,
            /// The clock in use: `tsc`, `monotonic` or `test`.
            pub clock: &'static str,
        }

        impl Health {
            /// The health counters of `counts` (the derived fields are left at their defaults).
            #[cfg_attr(not(feature = "enabled"), allow(dead_code))]
            pub(crate) fn from_counts(counts: &Counts) -> Health {
                Health { $( $hfield: counts[Counter::$hvar], )* ..Health::default() }
            }

            /// Every health counter as the exposition writes it, in table order.
            pub(crate) fn series(&self) -> Vec<HealthSeries> {
                vec![ $( HealthSeries {
                    metric: $metric,
                    help: concat!($($hdoc),*),
                    value: self.$hfield,
                }, )* ]
            }
        }
    };
}

counters! {
    ticks {
        /// Ticks whose `tick_total` exceeded the deadline.
        DeadlineMisses;
        /// Ticks in which `partial_fail` was called.
        PartialFails;
        /// Async ticks dropped before completion.
        TicksCancelled;
        /// Time spent in ticks, ns (for the overhead estimate).
        TickNs;
        /// Kept traces handed to the trace worker (`flush` waits for their sum).
        TracesSubmitted;
    }
    health {
        /// Spans left out of a tick's trace by the per-tick span cap (they still fed the histograms).
        SpansDropped => spans_dropped, "mm_trace_spans_dropped_total";
        /// Spans from carried work that ended after their tick had ended (histograms only).
        LateSpans => late_spans, "mm_trace_late_spans_total";
        /// Kept tick traces dropped because the trace queue was full (a thread has at most 256
        /// kept traces waiting for the trace worker).
        TracesDropped => traces_dropped, "mm_trace_traces_dropped_total";
        /// Slow unsampled ticks whose trace was kept (within the `slow_ticks_per_sec` limit).
        SlowTicksKept => slow_ticks_kept, "mm_trace_slow_ticks_kept_total";
        /// Slow-tick traces not kept because of the slow-tick rate limit.
        SlowTicksRateLimited => slow_ticks_rate_limited, "mm_trace_slow_ticks_rate_limited_total";
        /// Trace files or exports that failed.
        ExportErrors => export_errors, "mm_trace_export_errors_total";
        /// Label values folded into "other" by the cardinality cap.
        LabelOverflow => label_overflow, "mm_trace_label_overflow_total";
        /// Annotations left out of a kept tick's trace by the per-tick annotation cap.
        AnnotationsDropped => annotations_dropped, "mm_trace_annotations_dropped_total";
        /// Incoming traceparent values that were malformed (the tick started a new trace).
        TraceparentInvalid => traceparent_invalid, "mm_trace_traceparent_invalid_total";
        /// Kept ticks the OTLP receiver accepted (feature `otlp`, `trace.otlp` set).
        OtlpExported => otlp_exported_ticks, "mm_trace_otlp_exported_ticks_total";
        /// Kept ticks not exported over OTLP because `trace.otlp.max_queue_ticks` were already waiting.
        OtlpDropped => otlp_dropped_ticks, "mm_trace_otlp_dropped_ticks_total";
        /// Kept ticks whose OTLP export failed: refused by the receiver (a 4xx other than 429, or a
        /// 5xx other than 502, 503, 504), retries given up, or still unsent when `shutdown` ran out of time.
        OtlpFailed => otlp_failed_ticks, "mm_trace_otlp_failed_ticks_total";
        /// `tracing` spans the tracing layer (feature `tracing`) did not record because its span
        /// table had no room (`MmTraceLayer::max_open_spans`).
        UntrackedSpans => untracked_spans, "mm_trace_untracked_spans_total";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_health_counter_has_a_distinct_metric_and_help() {
        let h = Health { spans_dropped: 3, annotations_dropped: 5, ..Health::default() };
        let series = h.series();
        let mut names: Vec<_> = series.iter().map(|s| s.metric).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), series.len());
        for s in &series {
            assert!(s.metric.starts_with("mm_trace_") && s.metric.ends_with("_total"), "{}", s.metric);
            assert!(!s.help.trim().is_empty(), "{}", s.metric);
        }
        assert_eq!(series.iter().find(|s| s.metric == "mm_trace_spans_dropped_total").unwrap().value, 3);
        assert_eq!(series.iter().find(|s| s.metric == "mm_trace_annotations_dropped_total").unwrap().value, 5);
    }

    #[test]
    fn counts_round_trip_into_health() {
        let mut c = Counts::default();
        c[Counter::LateSpans] = 7;
        c[Counter::DeadlineMisses] = 9;
        let h = Health::from_counts(&c);
        assert_eq!(h.late_spans, 7);
        assert_eq!(Health { late_spans: 0, ..h }, Health::default());
        let base = Counts(std::array::from_fn(|i| i as u64));
        assert_eq!(c.since(&base)[Counter::LateSpans], 7 - Counter::LateSpans as u64);
    }
}
