fn main() {
    let name = "guards";
    let _g = mm_trace::stage_guard!(name);
}
