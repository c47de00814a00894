fn main() {
    let name = "guards";
    mm_trace::stage_guard!(name);
}
