//! `probe-lab`: build testbed topologies by hand, clean up stale namespaces, run one
//! impairment direction, or measure the impairment hop's accuracy.

fn main() {
    println!("placeholder");
}
