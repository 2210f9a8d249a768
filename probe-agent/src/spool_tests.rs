use super::*;

struct Dir(PathBuf);
impl Dir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "probe-agent-spool-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Self(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn rec(test: &str, start: u64) -> ResultRecord {
    ResultRecord {
        seq: 0,
        start_unix_ns: start,
        duration_ns: 5,
        agent: "a".into(),
        test: test.into(),
        kind: "a2a".into(),
        target: "t".into(),
        peer: None,
        ok: true,
        error_class: None,
        error: None,
        report: serde_json::json!({"sent": 10}),
    }
}

#[test]
fn records_are_numbered_across_reopen_and_filtered() {
    let d = Dir::new();
    let mut s = Spool::open(&d.0, 1 << 20, 4).expect("open");
    s.append(rec("a", 10)).expect("append");
    s.append(rec("b", 20)).expect("append");
    drop(s);
    let mut s = Spool::open(&d.0, 1 << 20, 4).expect("reopen");
    assert_eq!(s.append(rec("a", 30)).expect("append").seq, 2);
    let all = read(&d.0, &Filter::default()).expect("read");
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
    let f = Filter {
        since_unix_ns: Some(15),
        test: Some("a".into()),
    };
    let some = read(&d.0, &f).expect("read");
    assert_eq!(some.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
}

#[test]
fn a_torn_last_line_is_cut_and_numbering_continues() {
    let d = Dir::new();
    let mut s = Spool::open(&d.0, 1 << 20, 4).expect("open");
    s.append(rec("a", 1)).expect("append");
    s.append(rec("a", 2)).expect("append");
    drop(s);
    let cur = d.0.join(CURRENT);
    let whole = fs::read(&cur).expect("read");
    // A crash in the middle of the third line.
    let mut torn = whole.clone();
    torn.extend_from_slice(br#"{"seq":2,"start_unix_ns":3,"dur"#);
    fs::write(&cur, &torn).expect("write");
    let mut s = Spool::open(&d.0, 1 << 20, 4).expect("reopen");
    assert_eq!(fs::read(&cur).expect("read"), whole);
    assert_eq!(s.append(rec("a", 3)).expect("append").seq, 2);
    let text = fs::read_to_string(&cur).expect("read");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<ResultRecord>(l).is_ok())
    );
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn rotation_keeps_the_newest_files_and_reads_in_order() {
    let d = Dir::new();
    let one = serde_json::to_vec(&rec("a", 1)).expect("json").len() as u64;
    // Two records per file, two rotated files kept.
    let mut s = Spool::open(&d.0, 2 * one, 2).expect("open");
    for i in 0..9 {
        s.append(rec("a", i)).expect("append");
    }
    let rotated = files(&d.0).expect("files").len() - 1;
    assert_eq!(rotated, 2);
    let seqs: Vec<u64> = read(&d.0, &Filter::default())
        .expect("read")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8]);
    drop(s);
    let s = Spool::open(&d.0, 2 * one, 2).expect("reopen");
    assert_eq!(s.next_seq(), 9);
}

#[test]
fn a_runs_records_are_numbered_in_order_and_rotate_like_single_ones() {
    let d = Dir::new();
    let one = serde_json::to_vec(&rec("a", 1)).expect("json").len() as u64;
    let mut s = Spool::open(&d.0, 3 * one, 8).expect("open");
    s.append(rec("a", 0)).expect("append");
    let (written, failure) = s.append_all((1..8).map(|i| rec("b", i)).collect());
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(
        written.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    // Rotated mid-run: three records per file, the run's lines split across files in order.
    assert_eq!(files(&d.0).expect("files").len(), 3);
    let back = read(&d.0, &Filter::default()).expect("read");
    assert_eq!(
        back.iter()
            .map(|r| (r.seq, r.start_unix_ns))
            .collect::<Vec<_>>(),
        (0..8).map(|i| (i, i)).collect::<Vec<_>>()
    );
    drop(s);
    assert_eq!(Spool::open(&d.0, 3 * one, 8).expect("reopen").next_seq(), 8);
}

#[test]
fn since_takes_times_and_durations() {
    let now = 1_800_000_000_000_000_000;
    assert_eq!(parse_since("10s", now), Ok(now - 10_000_000_000));
    assert_eq!(
        parse_since("2026-12-01T00:00:00Z", now),
        Ok(1_796_083_200_000_000_000)
    );
    assert!(parse_since("yesterday", now).is_err());
}
