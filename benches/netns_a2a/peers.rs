//! Reading the numbers out of probe's and the peer tools' output. Every reader returns an
//! error naming the tool and the missing piece, so a tool whose output changed fails the
//! benchmark instead of printing NaN.

use serde_json::Value;

/// A number at `path` (keys separated by `.`) of a JSON document printed by `tool`.
pub fn json_number(tool: &str, v: &Value, path: &str) -> Result<f64, String> {
    path.split('.')
        .try_fold(v, |node, key| node.get(key))
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("{tool} JSON has no number at `{path}`"))
}

/// Parses a JSON document printed by `tool`.
pub fn json(tool: &str, stdout: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(stdout).map_err(|e| {
        format!(
            "{tool} printed no JSON document ({e}): {}",
            excerpt(&String::from_utf8_lossy(stdout))
        )
    })
}

/// `iperf3 -u … --json` (client side): datagrams the server received per second.
pub fn iperf3_received_pps(v: &Value) -> Result<f64, String> {
    let sum = v
        .get("end")
        .and_then(|e| e.get("sum_received").or_else(|| e.get("sum")))
        .ok_or("iperf3 JSON has neither `end.sum_received` nor `end.sum`")?;
    let packets = json_number("iperf3", sum, "packets")?;
    let lost = json_number("iperf3", sum, "lost_packets")?;
    let seconds = json_number("iperf3", sum, "seconds")?;
    if seconds <= 0.0 {
        return Err(format!("iperf3 reported {seconds} s of test"));
    }
    Ok((packets - lost) / seconds)
}

/// `sockperf ping-pong`: the median round trip in µs (sockperf prints the one-way latency,
/// half the round trip, as `percentile 50.000 = X` in µs).
pub fn sockperf_rtt_p50_us(text: &str) -> Result<f64, String> {
    text.lines()
        .find(|l| l.contains("percentile 50.000"))
        .and_then(|l| l.rsplit('=').next())
        .and_then(|x| x.trim().parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .map(|one_way| one_way * 2.0)
        .ok_or_else(|| {
            format!(
                "sockperf printed no `percentile 50.000 = <µs>` line: {}",
                excerpt(text)
            )
        })
}

/// `ping -q`: the minimum round trip in µs from `rtt min/avg/max/mdev = a/b/c/d ms`.
pub fn ping_min_us(text: &str) -> Result<f64, String> {
    text.lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|values| values.trim().split('/').next())
        .and_then(|min| min.trim().parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .map(|ms| ms * 1000.0)
        .ok_or_else(|| {
            format!(
                "ping printed no `rtt min/avg/max/mdev = …` line: {}",
                excerpt(text)
            )
        })
}

/// `irtt client -o -`: the mean timer error in µs (irtt reports ns).
pub fn irtt_timer_error_mean_us(v: &Value) -> Result<f64, String> {
    json_number("irtt", v, "stats.timer_error.mean").map(|ns| ns / 1000.0)
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return "(nothing)".into();
    }
    let tail: String = t
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// The readers against output in each tool's format, and against output they must refuse.
pub fn self_test() {
    let sockperf = "sockperf: ---> percentile 90.000 =    8.167\n\
                    sockperf: ---> percentile 50.000 =    6.815\n";
    assert!(close(sockperf_rtt_p50_us(sockperf), 13.63));
    assert!(sockperf_rtt_p50_us("sockperf: error").is_err());
    assert!(sockperf_rtt_p50_us("percentile 50.000 = nan").is_err());
    let ping = "3 packets transmitted, 3 received, 0% packet loss, time 2ms\n\
                rtt min/avg/max/mdev = 0.012/0.043/0.812/0.057 ms\n";
    assert!(close(ping_min_us(ping), 12.0));
    assert!(ping_min_us("100% packet loss").is_err());
    let iperf: Value =
        serde_json::json!({"end": {"sum": {"packets": 1000, "lost_packets": 100, "seconds": 3.0}}});
    assert!(close(iperf3_received_pps(&iperf), 300.0));
    assert!(iperf3_received_pps(&serde_json::json!({"error": "unable to connect"})).is_err());
    let irtt: Value = serde_json::json!({"stats": {"timer_error": {"mean": 263_000}}});
    assert!(close(irtt_timer_error_mean_us(&irtt), 263.0));
    assert!(irtt_timer_error_mean_us(&serde_json::json!({"stats": {}})).is_err());
    assert!(json("probe", b"not json").is_err());
}

fn close(got: Result<f64, String>, want: f64) -> bool {
    got.is_ok_and(|x| (x - want).abs() < 1e-9)
}
