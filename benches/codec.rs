//! Codec benchmarks.
fn main() {}
