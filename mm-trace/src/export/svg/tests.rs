//! Unit tests of `svg`.

use super::*;

#[test]
fn durations_have_three_significant_digits_and_a_unit() {
    let cases = [(870, "870 ns"), (12_340, "12.3 µs"), (1_234_000, "1.23 ms"), (235_400_000, "235 ms")];
    for (ns, want) in cases {
        assert_eq!(duration(ns), want);
    }
    assert_eq!(duration(2_500_000_000), "2.50 s");
}

#[test]
fn axis_steps_are_round_and_labels_have_the_decimals_they_need() {
    assert_eq!(axis_step(235_000_000), (50_000_000, 0));
    assert_eq!(axis_step(2_000_000), (200_000, 1));
    assert_eq!(axis_step(30_000), (5_000, 3));
}

#[test]
fn markup_and_forbidden_characters_are_escaped() {
    assert_eq!(esc("a<b & \"c\" 'd'>\u{1}"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}");
    assert_eq!(fit("fetch_md 12.3 ms", 9.0), "fetch_md…");
    assert_eq!(fit("fetch_md", 2.0), "");
    assert_eq!(squeeze("fetch_md", 39_700_000, 15.0), "fetch_md 39.7ms");
    assert_eq!(squeeze("fetch_md", 39_700_000, 12.0), "fetc… 39.7ms");
    assert_eq!(squeeze("fetch_md", 39_700_000, 8.0), "fetch_md");
    assert_eq!(squeeze("fetch_md", 39_700_000, 6.0), "fetch…");
}
