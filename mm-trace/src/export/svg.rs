//! One tick as a self-contained SVG timeline (no script, no external reference): a row per
//! thread or concurrent lane, stages nested under their parents, a time axis in ms, the deadline.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::lanes::{self, Item};
use crate::summary::{TickTrace, TraceSpan};
use crate::xml::escape as esc;

const WIDTH: f64 = 1200.0;
/// Left gutter for row labels.
const LEFT: f64 = 210.0;
const RIGHT: f64 = 30.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
/// Bar height, and the vertical step of one nesting level.
const BAR: f64 = 16.0;
const LEVEL: f64 = 18.0;
/// Advance of one character at 11 px in the monospace fonts named below (0.6 em), a bit more
/// for safety: labels are cut to what fits by this estimate.
const CHAR: f64 = 6.8;
/// Rows listed in the table of stages under the timeline.
const TABLE_ROWS: usize = 15;

/// Stage colours (Tableau 10 without its red, kept for errors and the deadline), and the light
/// tones for exchange requests.
const STAGE_COLOURS: [&str; 9] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f", "#bab0ac"];
const EXCHANGE_COLOURS: [&str; 6] = ["#a0cbe8", "#ffbe7d", "#8cd17d", "#f1ce63", "#86bcb6", "#d4a6c8"];
const RED: &str = "#d62728";

/// One span's place in the picture.
struct Bar {
    lane: u32,
    depth: u32,
    start: u64,
    end: u64,
}

/// Renders `t` as an SVG document. `deadline_ns`: the tick's deadline, marked if known.
pub(crate) fn render(t: &TickTrace, deadline_ns: Option<u64>) -> String {
    let spans = &t.spans;
    let index: HashMap<u32, usize> = spans.iter().enumerate().map(|(k, s)| (s.id, k)).collect();
    let parent_of: Vec<Option<usize>> = spans.iter().map(|s| s.parent.and_then(|p| index.get(&p).copied())).collect();
    let items: Vec<Item> = spans
        .iter()
        .zip(&parent_of)
        .map(|(s, &parent)| Item { start: s.start_ns, end: s.end_ns.max(s.start_ns), thread: s.thread, parent })
        .collect();
    let placed = lanes::assign(&items);
    let mut by_rank: Vec<usize> = (0..spans.len()).collect();
    by_rank.sort_by_key(|&i| placed[i].rank);
    let mut depth = vec![0u32; spans.len()];
    for &i in &by_rank {
        depth[i] = placed[i].enclosing.map_or(0, |e| depth[e] + 1);
    }
    let bars: Vec<Bar> = (0..spans.len())
        .map(|i| Bar { lane: placed[i].lane, depth: depth[i], start: items[i].start, end: items[i].end })
        .collect();

    // Rows: the tick's own thread first, then threads by their first span; lanes in order.
    let mut threads: Vec<u32> = vec![t.thread];
    let mut by_start: Vec<usize> = (0..spans.len()).collect();
    by_start.sort_by_key(|&i| (items[i].start, i));
    for &i in &by_start {
        if !threads.contains(&spans[i].thread) {
            threads.push(spans[i].thread);
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    for &thread in &threads {
        let lanes_used = bars.iter().zip(spans).filter(|(_, s)| s.thread == thread).map(|(b, _)| b.lane + 1).max();
        for lane in 0..lanes_used.unwrap_or(0) {
            let levels = bars
                .iter()
                .zip(spans)
                .filter(|(b, s)| s.thread == thread && b.lane == lane)
                .map(|(b, _)| b.depth + 1)
                .max()
                .unwrap_or(1);
            rows.push(Row { thread, lane, levels, y: 0.0 });
        }
    }

    let data_end = spans.iter().map(|s| s.end_ns.max(s.start_ns)).chain([t.duration_ns, 1]).max().unwrap_or(1);
    // The deadline is drawn in the plot when it lies near it, else named at the right edge.
    let range = match deadline_ns {
        Some(d) if d <= data_end.saturating_add(data_end / 4) => data_end.max(d),
        _ => data_end,
    };
    let x = |ns: u64| round2(LEFT + PLOT * (ns as f64 / range as f64));

    let mut out = String::new();
    let title = headline(t, deadline_ns);
    let mut info = vec![
        format!("kept: {}", t.reason.as_str()),
        format!("{} span{}", spans.len(), plural(spans.len())),
        format!("{} thread{}", threads.len(), plural(threads.len())),
    ];
    if rows.len() > threads.len() {
        info.push(format!("{} rows (concurrent spans of one thread get lanes)", rows.len()));
    }
    if !t.trace_id.is_empty() {
        info.push(format!("trace {}", t.trace_id));
    }
    if t.spans_dropped > 0 {
        info.push(format!("{} spans left out by the cap", t.spans_dropped));
    }
    let annotations: Vec<String> = t.annotations.iter().map(|(k, v)| format!("{k}={v}")).collect();

    let axis_y = if annotations.is_empty() { 66.0 } else { 82.0 };
    let tick_y = axis_y + 10.0;
    let mut y = tick_y + LEVEL + 10.0;
    for r in &mut rows {
        r.y = y;
        y += f64::from(r.levels) * LEVEL + 6.0;
    }
    let plot_bottom = y;
    let stages = stage_table(t, &parent_of);
    let table_y = plot_bottom + 46.0;
    let height = (table_y + 18.0 * (stages.len().min(TABLE_ROWS) as f64 + 1.0) + 16.0).ceil();

    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11">"#
    );
    let _ = writeln!(out, "<title>{}</title>", esc(&title));
    out.push_str(
        "<style>.span:hover rect{stroke:#000;stroke-width:1.5}.row-label{fill:#333}.axis{fill:#555}.table{white-space:pre}</style>\n",
    );
    let _ = writeln!(out, r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##);
    let _ =
        writeln!(out, r##"<text x="12" y="22" font-size="15" font-weight="bold" fill="#111">{}</text>"##, esc(&title));
    let _ = writeln!(out, r##"<text x="12" y="42" fill="#444">{}</text>"##, esc(&info.join(" · ")));
    if !annotations.is_empty() {
        let line = fit(&format!("annotations: {}", annotations.join(", ")), (WIDTH - 24.0) / CHAR);
        let _ = writeln!(out, r##"<text x="12" y="60" fill="#444">{}</text>"##, esc(&line));
    }

    // Rows' backgrounds and labels.
    // Thread names; two threads of one name (a pool's workers) are told apart by their ordinal.
    let mut names: HashMap<u32, String> = HashMap::new();
    for &thread in &threads {
        let name = t.threads.iter().find(|(o, _)| *o == thread).map_or("", |(_, n)| n.as_str());
        let twins = t.threads.iter().filter(|(o, n)| n == name && threads.contains(o)).count();
        let shown = match name {
            "" => format!("thread-{thread}"),
            n if twins > 1 => format!("{n} #{thread}"),
            n => n.to_owned(),
        };
        names.insert(thread, shown);
    }
    for (k, r) in rows.iter().enumerate() {
        let h = f64::from(r.levels) * LEVEL + 2.0;
        let fill = if k % 2 == 0 { "#f6f6f6" } else { "#ececec" };
        let _ = writeln!(
            out,
            r#"<rect class="row" x="0" y="{}" width="{WIDTH}" height="{h}" fill="{fill}"/>"#,
            round2(r.y - 2.0)
        );
        let label = fit(&row_name(&names, r.thread, r.lane), (LEFT - 14.0) / CHAR);
        let _ = writeln!(out, r#"<text class="row-label" x="8" y="{}">{}</text>"#, round2(r.y + 12.0), esc(&label));
    }

    // Time axis: grid lines, ticks and labels in ms.
    let (step, decimals) = axis_step(range);
    let _ = writeln!(
        out,
        r#"<text class="axis" x="{}" y="{}" text-anchor="end">ms since tick start</text>"#,
        LEFT - 8.0,
        axis_y - 6.0
    );
    let _ = writeln!(out, r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#777"/>"##, LEFT + PLOT);
    let mut at = 0u64;
    while at <= range {
        let px = x(at);
        let _ = writeln!(
            out,
            r##"<line x1="{px}" y1="{}" x2="{px}" y2="{plot_bottom}" stroke="#000" stroke-opacity="0.08"/><line x1="{px}" y1="{axis_y}" x2="{px}" y2="{}" stroke="#777"/><text class="axis" x="{px}" y="{}" text-anchor="middle">{:.*}</text>"##,
            axis_y,
            axis_y + 4.0,
            axis_y - 6.0,
            decimals,
            at as f64 / 1e6
        );
        at += step;
    }

    // The tick itself, then every span.
    let (tx, tw) = (x(0), x(t.duration_ns) - x(0));
    let tick_label = format!("{} {}", t.name, duration(t.duration_ns));
    let tick_stroke = if t.deadline_missed || t.error { RED } else { "#888" };
    let _ = writeln!(
        out,
        r##"<g class="tick" data-start-ns="0" data-end-ns="{}"><title>{}</title><rect x="{tx}" y="{tick_y}" width="{}" height="{BAR}" fill="#d9d9d9" stroke="{tick_stroke}"/><text x="{}" y="{}" fill="#111">{}</text></g>"##,
        t.duration_ns,
        esc(&tick_tooltip(t, deadline_ns)),
        round2(tw),
        round2(tx + 3.0),
        tick_y + 12.0,
        esc(&fit(&tick_label, (tw - 6.0).max(PLOT / 2.0) / CHAR)),
    );
    let _ = writeln!(out, r#"<text class="row-label" x="8" y="{}">tick</text>"#, tick_y + 12.0);
    if let Some(d) = deadline_ns.filter(|&d| d < t.duration_ns && d <= range) {
        let (dx, ox) = (x(d), x(t.duration_ns));
        let _ = writeln!(
            out,
            r#"<rect class="overrun" x="{dx}" y="{tick_y}" width="{}" height="{BAR}" fill="{RED}" fill-opacity="0.35"/>"#,
            round2(ox - dx)
        );
    }

    let row_index: HashMap<(u32, u32), usize> = rows.iter().enumerate().map(|(k, r)| ((r.thread, r.lane), k)).collect();
    // Per row and level, bars by start: a label may use the room up to the next bar.
    let mut level_bars: HashMap<(usize, u32), Vec<usize>> = HashMap::new();
    for &i in &by_start {
        let row = row_index[&(spans[i].thread, bars[i].lane)];
        level_bars.entry((row, bars[i].depth)).or_default().push(i);
    }
    let mut room_end = vec![LEFT + PLOT + RIGHT - 4.0; spans.len()];
    for list in level_bars.values() {
        for w in list.windows(2) {
            room_end[w[0]] = x(bars[w[1]].start);
        }
    }
    let self_ns = self_times(t, &parent_of);
    // Per row and level, how far right the bars and labels drawn so far reach.
    let mut used: HashMap<(usize, u32), f64> = HashMap::new();
    for &i in &by_start {
        let (s, b) = (&spans[i], &bars[i]);
        let row_k = row_index[&(s.thread, b.lane)];
        let row = &rows[row_k];
        let by = round2(row.y + f64::from(b.depth) * LEVEL);
        let (bx, bx2) = (x(b.start), x(b.end));
        let bw = round2(bx2 - bx);
        let fill = colour(s);
        let mut rect_attrs = format!(r#"fill="{fill}""#);
        if s.error {
            let _ = write!(rect_attrs, r#" stroke="{RED}" stroke-width="2""#);
        } else {
            rect_attrs.push_str(r##" stroke="#ffffff" stroke-width="0.5""##);
        }
        if s.cancelled {
            rect_attrs.push_str(r#" fill-opacity="0.45" stroke-dasharray="3 2""#);
        }
        let label = format!("{} {}", s.name, duration(b.end - b.start));
        let reach = used.entry((row_k, b.depth)).or_insert(LEFT);
        let inside = (bw - 6.0) / CHAR;
        let beside = (room_end[i] - bx2 - 6.0) / CHAR;
        let before = (bx - *reach - 8.0) / CHAR;
        let full = label.chars().count() as f64;
        // Inside the bar, else after it, else before it (right-aligned), else cut to the most room.
        let (text, tx, anchor, colour_text) = if full <= inside {
            (label, bx + 3.0, "start", text_colour(fill))
        } else if full <= beside {
            (label, bx2 + 3.0, "start", "#111")
        } else if full <= before {
            (label, bx - 3.0, "end", "#111")
        } else if inside >= beside {
            (squeeze(&s.name, b.end - b.start, inside), bx + 3.0, "start", text_colour(fill))
        } else {
            (squeeze(&s.name, b.end - b.start, beside), bx2 + 3.0, "start", "#111")
        };
        let text_end = if anchor == "end" { bx } else { tx + text.chars().count() as f64 * CHAR };
        *reach = reach.max(bx2).max(text_end);
        let parent = parent_of[i].map_or_else(|| "tick".to_owned(), |p| spans[p].id.to_string());
        let _ = write!(
            out,
            r#"<g class="span" data-id="{}" data-parent="{parent}" data-start-ns="{}" data-end-ns="{}" data-thread="{}" data-lane="{}" data-depth="{}"><title>{}</title><rect x="{bx}" y="{by}" width="{bw}" height="{BAR}" {rect_attrs}/>"#,
            s.id,
            b.start,
            b.end,
            s.thread,
            b.lane,
            b.depth,
            esc(&span_tooltip(s, self_ns[i], &row_name(&names, s.thread, b.lane))),
        );
        if !text.is_empty() {
            let anchor = if anchor == "end" { r#" text-anchor="end""# } else { "" };
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" fill="{colour_text}"{anchor}>{}</text>"#,
                round2(tx),
                by + 12.0,
                esc(&text)
            );
        }
        out.push_str("</g>\n");
    }

    // The deadline across the plot, or named at its right edge when it lies far beyond.
    match deadline_ns {
        Some(d) if d <= range => {
            let dx = x(d);
            let anchor = if dx > LEFT + PLOT - 150.0 { "end" } else { "start" };
            let shift = if anchor == "end" { -4.0 } else { 4.0 };
            let _ = writeln!(
                out,
                r#"<g class="deadline" data-ns="{d}"><line x1="{dx}" y1="{}" x2="{dx}" y2="{plot_bottom}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 3"/><text x="{}" y="{}" fill="{RED}" text-anchor="{anchor}">deadline {}</text></g>"#,
                axis_y,
                round2(dx + shift),
                axis_y - 18.0,
                duration(d)
            );
        }
        Some(d) => {
            let _ = writeln!(
                out,
                r#"<g class="deadline" data-ns="{d}"><text x="{}" y="{}" fill="{RED}" text-anchor="end">deadline {} (beyond the right edge) →</text></g>"#,
                LEFT + PLOT,
                axis_y - 18.0,
                duration(d)
            );
        }
        None => {}
    }

    // Legend and where the time went.
    let ly = plot_bottom + 18.0;
    let _ = writeln!(
        out,
        r##"<g class="legend"><rect x="12" y="{}" width="14" height="10" fill="{}"/><text x="30" y="{ly}">stage</text><rect x="80" y="{}" width="14" height="10" fill="{}"/><text x="98" y="{ly}">exchange request</text><rect x="232" y="{}" width="14" height="10" fill="#ffffff" stroke="{RED}" stroke-width="2"/><text x="250" y="{ly}">returned Err</text><rect x="350" y="{}" width="14" height="10" fill="{}" fill-opacity="0.45" stroke="#555" stroke-dasharray="3 2"/><text x="368" y="{ly}">cancelled</text><line x1="450" y1="{}" x2="470" y2="{}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 3"/><text x="476" y="{ly}">deadline</text><text x="560" y="{ly}" fill="#555">hover a bar for its details; times are wall clock since the tick began</text></g>"##,
        ly - 9.0,
        STAGE_COLOURS[0],
        ly - 9.0,
        EXCHANGE_COLOURS[0],
        ly - 9.0,
        ly - 9.0,
        STAGE_COLOURS[0],
        ly - 4.0,
        ly - 4.0,
    );
    let line = |name: &str, count: &str, total: &str, own: &str, max: &str| {
        esc(&format!("{:<28} {count:>6} {total:>11} {own:>11} {max:>11}", fit(name, 28.0)))
    };
    let _ = writeln!(
        out,
        r##"<text class="table" x="12" y="{table_y}" font-weight="bold" fill="#111">{}</text>"##,
        line("stage (by total time)", "count", "total", "self", "max")
    );
    for (k, st) in stages.iter().take(TABLE_ROWS).enumerate() {
        let _ = writeln!(
            out,
            r##"<text class="table" x="12" y="{}" fill="#222">{}</text>"##,
            table_y + 18.0 * (k as f64 + 1.0),
            line(&st.name, &st.count.to_string(), &duration(st.total), &duration(st.self_ns), &duration(st.max))
        );
    }
    if stages.len() > TABLE_ROWS {
        let _ = writeln!(
            out,
            r##"<text x="620" y="{}" fill="#555">… and {} more stages</text>"##,
            table_y + 18.0 * TABLE_ROWS as f64,
            stages.len() - TABLE_ROWS
        );
    }
    out.push_str("</svg>\n");
    out
}

struct Row {
    thread: u32,
    lane: u32,
    levels: u32,
    y: f64,
}

fn row_name(names: &HashMap<u32, String>, thread: u32, lane: u32) -> String {
    let base = names.get(&thread).cloned().unwrap_or_else(|| format!("thread-{thread}"));
    if lane == 0 { base } else { format!("{base} (lane {})", lane + 1) }
}

fn headline(t: &TickTrace, deadline_ns: Option<u64>) -> String {
    let mut s = format!("{} #{}: {}", t.name, t.tick_id, duration(t.duration_ns));
    match deadline_ns {
        Some(d) if t.deadline_missed || t.duration_ns > d => {
            let _ = write!(s, ", missed its {} deadline by {}", duration(d), duration(t.duration_ns.saturating_sub(d)));
        }
        Some(d) => {
            let _ = write!(s, ", within its {} deadline", duration(d));
        }
        None if t.deadline_missed => s.push_str(", missed its deadline"),
        None => {}
    }
    if t.error {
        s.push_str(", returned Err");
    }
    if t.partial_fail {
        s.push_str(", partial failure");
    }
    s
}

fn tick_tooltip(t: &TickTrace, deadline_ns: Option<u64>) -> String {
    let mut s = format!("{} (tick {})\nduration {}", t.name, t.tick_id, duration(t.duration_ns));
    if let Some(d) = deadline_ns {
        let _ = write!(s, "\ndeadline {}{}", duration(d), if t.deadline_missed { " (missed)" } else { "" });
    }
    let _ = write!(s, "\nkept: {}", t.reason.as_str());
    if !t.trace_id.is_empty() {
        let _ = write!(s, "\ntrace {} span {}", t.trace_id, t.span_id);
    }
    for (flag, on) in [("returned Err", t.error), ("partial failure", t.partial_fail)] {
        if on {
            let _ = write!(s, "\n{flag}");
        }
    }
    for (k, v) in &t.annotations {
        let _ = write!(s, "\n{k} = {v}");
    }
    s
}

fn span_tooltip(s: &TraceSpan, self_ns: u64, thread: &str) -> String {
    let dur = s.end_ns.saturating_sub(s.start_ns);
    let mut out = format!(
        "{}\nstart +{:.3} ms, duration {}, self {}\nthread {thread}\n{} (id {})",
        s.name,
        s.start_ns as f64 / 1e6,
        duration(dur),
        duration(self_ns),
        s.kind,
        if s.span_id.is_empty() { s.id.to_string() } else { s.span_id.clone() },
    );
    if s.error {
        out.push_str("\nreturned Err");
    }
    if s.cancelled {
        out.push_str("\ncancelled (dropped before completion)");
    }
    for (k, v) in &s.labels {
        let _ = write!(out, "\n{k} = {v}");
    }
    out
}

/// Per span, its duration minus the wall time its children cover (children on other threads
/// included; overlapping children count once).
pub(crate) fn self_times(t: &TickTrace, parent_of: &[Option<usize>]) -> Vec<u64> {
    let mut children: Vec<Vec<(u64, u64)>> = vec![Vec::new(); t.spans.len()];
    for (i, p) in parent_of.iter().enumerate() {
        if let Some(p) = *p {
            children[p].push((t.spans[i].start_ns, t.spans[i].end_ns));
        }
    }
    t.spans
        .iter()
        .zip(children)
        .map(|(s, mut c)| {
            let (start, end) = (s.start_ns, s.end_ns.max(s.start_ns));
            c.sort_unstable();
            let (mut covered, mut upto) = (0, start);
            for (a, b) in c {
                let (a, b) = (a.max(upto), b.min(end));
                if b > a {
                    covered += b - a;
                    upto = b;
                }
            }
            (end - start).saturating_sub(covered)
        })
        .collect()
}

struct StageRow {
    name: String,
    count: u64,
    total: u64,
    self_ns: u64,
    max: u64,
}

/// Stages of the tick by total time: count, total, self and longest span.
fn stage_table(t: &TickTrace, parent_of: &[Option<usize>]) -> Vec<StageRow> {
    let self_ns = self_times(t, parent_of);
    let mut by_name: Vec<StageRow> = Vec::new();
    for (s, own) in t.spans.iter().zip(self_ns) {
        let d = s.end_ns.saturating_sub(s.start_ns);
        let row = match by_name.iter_mut().position(|r| r.name == s.name) {
            Some(k) => &mut by_name[k],
            None => {
                by_name.push(StageRow { name: s.name.clone(), count: 0, total: 0, self_ns: 0, max: 0 });
                by_name.last_mut().expect("just pushed")
            }
        };
        row.count += 1;
        row.total += d;
        row.self_ns += own;
        row.max = row.max.max(d);
    }
    by_name.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    by_name
}

fn colour(s: &TraceSpan) -> &'static str {
    // FNV-1a: a stage keeps its colour in every picture.
    let h = s.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    if s.kind == "exchange" {
        EXCHANGE_COLOURS[(h % EXCHANGE_COLOURS.len() as u64) as usize]
    } else {
        STAGE_COLOURS[(h % STAGE_COLOURS.len() as u64) as usize]
    }
}

/// Black or white, whichever reads better on `fill` (`#rrggbb`).
fn text_colour(fill: &str) -> &'static str {
    let c = |k: usize| u8::from_str_radix(fill.get(k..k + 2).unwrap_or("ff"), 16).unwrap_or(255) as f64 / 255.0;
    let luminance = 0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5);
    if luminance > 0.45 { "#111" } else { "#fff" }
}

/// A step of 1, 2 or 5 times a power of ten giving 5 to 12 ticks over `range` ns, and the
/// decimals its labels need in ms.
fn axis_step(range: u64) -> (u64, usize) {
    let raw = (range as f64 / 10.0).max(1.0);
    let mag = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let step_ns = (step.round() as u64).max(1);
    let decimals = (-(step_ns as f64 / 1e6).log10().floor()).max(0.0) as usize;
    (step_ns, decimals)
}

/// A duration with its unit and 3 significant digits (`235 ms`, `12.3 µs`, `870 ns`).
pub(crate) fn duration(ns: u64) -> String {
    let (v, unit) = match ns {
        0..1_000 => return format!("{ns} ns"),
        1_000..1_000_000 => (ns as f64 / 1e3, "µs"),
        1_000_000..1_000_000_000 => (ns as f64 / 1e6, "ms"),
        _ => (ns as f64 / 1e9, "s"),
    };
    let decimals = if v >= 99.95 {
        0
    } else if v >= 9.995 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

/// A label of at most `chars` characters for a bar too narrow for `name 12.3 ms`: the
/// duration kept (`fetch… 12.3ms`) while a few characters of the name fit beside it, else the
/// name alone, cut.
fn squeeze(name: &str, ns: u64, chars: f64) -> String {
    let compact = duration(ns).replace(' ', "");
    let label = format!("{name} {compact}");
    let room = chars.floor().max(0.0) as usize;
    let dur = compact.chars().count();
    if label.chars().count() <= room {
        label
    } else if room >= dur + 4 {
        format!("{} {compact}", fit(name, (room - dur - 1) as f64))
    } else {
        fit(name, chars)
    }
}

/// `s` cut to at most `chars` characters, ending in `…` when cut; empty below 3.
fn fit(s: &str, chars: f64) -> String {
    let max = chars.floor().max(0.0) as usize;
    let n = s.chars().count();
    if n <= max {
        s.to_owned()
    } else if max < 3 {
        String::new()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
