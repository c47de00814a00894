//! The words of configuration errors: a YAML value as the user wrote it, and "did you mean"
//! (shared by the `trace` section's parser and its `otlp` part).

use serde_norway::Value;

/// How far `word` is from `known` (case-insensitive edit distance, a swap of neighbours counting
/// one), when it is near enough to suggest: within a third of `known`'s length (at least 1), or
/// one a prefix of the other with at least 4 letters in common (`deadline` for `deadline_ms`).
pub(super) fn distance_if_near(word: &str, known: &str) -> Option<usize> {
    let (a, b): (Vec<char>, Vec<char>) = (word.to_lowercase().chars().collect(), known.chars().collect());
    let d = edit_distance(&a, &b);
    let prefix = a.len().min(b.len()) >= 4 && (a.starts_with(&b) || b.starts_with(&a));
    (d <= (b.len() / 3).max(1) || prefix).then_some(d)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost one.
pub(super) fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut rows: Vec<Vec<usize>> = (0..=a.len()).map(|i| vec![i; b.len() + 1]).collect();
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => format!("{s:?}"),
        other => {
            serde_norway::to_string(other).map(|s| s.trim_end().to_owned()).unwrap_or_else(|_| format!("{other:?}"))
        }
    }
}
