//! Tools measured in turns: each run measures every tool once, in order, so machine load hits
//! them alike; a row reports each tool's median and the per-run ratios between tools, which
//! load moves less than the rates themselves.

use probe_lab::Host;

use super::RUNS;

/// One tool of a row: what it measures (with the unit, as logged) and the measurement.
pub type Tool<'a> = (&'a str, &'a dyn Fn() -> f64);

/// Measures `tools` in turns, [`RUNS`] times, logging each run on stderr under `path`; each
/// tool's values in run order.
pub fn take_turns<const N: usize>(path: &str, tools: [Tool<'_>; N]) -> [Vec<f64>; N] {
    let mut values: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(RUNS));
    for _ in 0..RUNS {
        let mut shown = Vec::with_capacity(N);
        for ((what, measure), v) in tools.iter().zip(values.iter_mut()) {
            let x = measure();
            shown.push(if x.abs() >= 100.0 {
                format!("{what} {x:.0}")
            } else {
                format!("{what} {x:.2}")
            });
            v.push(x);
        }
        eprintln!("{path}: {}", shown.join(", "));
    }
    values
}

/// The median (the upper one of an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per-run ratios `a ÷ b`.
pub fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}

/// Per-run ratios as the tables show them: `median (run, run, …)`.
pub fn median_and_runs(ratios: &[f64]) -> String {
    let runs: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    format!("{:.2} ({})", median(ratios), runs.join(", "))
}

/// One row per path: direct veth, nat (the agent behind masquerade to the peer) and macvlan,
/// each topology up only while its row is measured; `row` gets the path's name, the client
/// and the server.
pub fn paths<R>(row: impl Fn(&'static str, &Host, &Host) -> R) -> Vec<R> {
    use probe_lab::topology;
    let mut rows = Vec::new();
    {
        let lab = topology::direct().expect("direct");
        rows.push(row("direct", &lab.a, &lab.b));
    }
    {
        let lab = topology::nat().expect("nat");
        rows.push(row("nat (agent → peer)", &lab.agent, &lab.peer));
    }
    {
        let lab = topology::macvlan().expect("macvlan");
        rows.push(row("macvlan (agent → peer)", &lab.agent, &lab.peer));
    }
    rows
}

/// The turns and the ratio text on fixed numbers (runs without root): the tools alternate
/// run by run, each value lands with its tool.
pub fn self_test() {
    let runs = std::cell::Cell::new(0.0);
    let [a, b] = take_turns(
        "turns self-test",
        [
            ("a", &|| {
                runs.set(runs.get() + 1.0);
                runs.get()
            }),
            ("b", &|| 2.0 * runs.get()),
        ],
    );
    assert_eq!(a, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(b, [2.0, 4.0, 6.0, 8.0, 10.0]);
    assert!((median(&b) - 6.0).abs() < 1e-12);
    assert_eq!(ratios(&a, &b), [0.5; RUNS]);
    assert_eq!(
        median_and_runs(&[0.9, 1.25, 1.0]),
        "1.00 (0.90, 1.25, 1.00)"
    );
}
