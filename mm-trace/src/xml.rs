//! Text for the XML mm-trace writes (the SVG pictures of ticks) and perf-gate writes (its
//! report chart): one rule for both.

/// `s` as XML character data or an attribute value: the five markup characters escaped (`&`,
/// `<`, `>`, `"`, `'`), characters XML 1.0 does not allow (controls other than tab, line feed and
/// carriage return; U+FFFE, U+FFFF) replaced by U+FFFD.
///
/// ```
/// assert_eq!(mm_trace::xml::escape("GET <book> & \"quotes\""), "GET &lt;book&gt; &amp; &quot;quotes&quot;");
/// assert_eq!(mm_trace::xml::escape("bell\u{7}"), "bell\u{fffd}");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
