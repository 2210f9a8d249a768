//! Benchmarks of the agent-to-agent (STAMP) sans-IO core.

fn main() {}
