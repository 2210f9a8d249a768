//! When each test runs: sans-IO, fed the time as a value and told when runs finish.
//!
//! Each test has an interval, a random offset for its first slot and a random delay of up to
//! its jitter for every run, so a fleet started together never synchronises. Latency tests
//! run side by side; a throughput test runs alone: when it comes due it waits for the running
//! tests to finish, and latency tests due meanwhile are skipped. A slot that cannot be used
//! (the test's previous run is still going, an exclusive test holds the line, the agent was
//! stalled) becomes a [`Action::Skip`] with the reason, so the gap shows in the results.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::Class;

/// What the scheduler needs of a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Time between slots.
    pub interval: Duration,
    /// Largest random delay of a run after its slot.
    pub jitter: Duration,
    /// How long a run may take.
    pub deadline: Duration,
    /// Latency (side by side) or throughput (alone).
    pub class: Class,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a run of test `test` for the slot at `slot_ns`; cut it short at `deadline_ns`.
    Start {
        /// The test's index.
        test: usize,
        /// The slot's nominal time.
        slot_ns: u64,
        /// When the run must be over.
        deadline_ns: u64,
    },
    /// Record the slot at `slot_ns` of test `test` as skipped.
    Skip {
        /// The test's index.
        test: usize,
        /// The slot's nominal time.
        slot_ns: u64,
        /// Why.
        reason: String,
    },
}

#[derive(Debug)]
struct Entry {
    spec: Spec,
    slot_ns: u64,
    due_ns: u64,
    running: bool,
    ran_once: bool,
}

/// The scheduler of a set of tests.
#[derive(Debug)]
pub struct Scheduler {
    tests: Vec<Entry>,
    rng: StdRng,
    /// A throughput test waiting for the line to clear.
    waiting: Option<usize>,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

impl Scheduler {
    /// Schedules `specs` from `now_ns`, each first slot at a random offset within its
    /// interval, drawing from a generator seeded with `seed`.
    pub fn new(specs: &[Spec], now_ns: u64, seed: u64) -> Scheduler {
        let mut rng = StdRng::seed_from_u64(seed);
        let tests = specs
            .iter()
            .map(|s| {
                let slot_ns = now_ns + rng.random_range(0..ns(s.interval).max(1));
                Entry {
                    spec: s.clone(),
                    slot_ns,
                    due_ns: slot_ns,
                    running: false,
                    ran_once: false,
                }
            })
            .collect();
        let mut s = Scheduler {
            tests,
            rng,
            waiting: None,
        };
        for i in 0..s.tests.len() {
            s.tests[i].due_ns = s.tests[i].slot_ns + s.draw_jitter(i);
        }
        s
    }

    fn draw_jitter(&mut self, i: usize) -> u64 {
        let j = ns(self.tests[i].spec.jitter);
        if j == 0 {
            0
        } else {
            self.rng.random_range(0..=j)
        }
    }

    /// Moves test `i` to its next slot and draws that run's delay.
    fn advance(&mut self, i: usize) {
        self.tests[i].slot_ns += ns(self.tests[i].spec.interval).max(1);
        let jitter = self.draw_jitter(i);
        self.tests[i].due_ns = self.tests[i].slot_ns + jitter;
    }

    /// Skips the slots of test `i` that ended before `now_ns` unused (the agent stalled or
    /// was suspended), leaving the slot `now_ns` falls in.
    fn catch_up(&mut self, i: usize, now_ns: u64) -> Vec<Action> {
        let interval = ns(self.tests[i].spec.interval).max(1);
        let mut out = Vec::new();
        while self.tests[i].slot_ns + interval <= now_ns {
            out.push(Action::Skip {
                test: i,
                slot_ns: self.tests[i].slot_ns,
                reason: "missed: the agent did not get to it in time".into(),
            });
            self.tests[i].slot_ns += interval;
        }
        out
    }

    fn any_running(&self) -> bool {
        self.tests.iter().any(|t| t.running)
    }

    /// Whether every test has had a slot (run or skipped).
    pub fn every_test_ran(&self) -> bool {
        self.tests.iter().all(|t| t.ran_once)
    }

    /// The actions due at `now_ns`, in test order.
    pub fn poll(&mut self, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        // A waiting exclusive test starts once the line is clear.
        if let Some(w) = self.waiting
            && !self.any_running()
        {
            self.waiting = None;
            out.push(self.start(w, now_ns));
        }
        for i in 0..self.tests.len() {
            if self.tests[i].due_ns > now_ns || self.waiting == Some(i) {
                continue;
            }
            out.extend(self.catch_up(i, now_ns));
            let slot_ns = self.tests[i].slot_ns;
            let reason = if self.tests[i].running {
                Some("the previous run is still going".to_owned())
            } else if let Some(w) = self.waiting {
                Some(format!("throughput test #{w} is waiting for the line"))
            } else {
                self.exclusive_running()
                    .map(|x| format!("throughput test #{x} holds the line"))
            };
            if let Some(reason) = reason {
                self.tests[i].ran_once = true;
                self.advance(i);
                out.push(Action::Skip {
                    test: i,
                    slot_ns,
                    reason,
                });
                continue;
            }
            if self.tests[i].spec.class == Class::Throughput && self.any_running() {
                self.waiting = Some(i);
                continue;
            }
            out.push(self.start(i, now_ns));
        }
        // An exclusive test still waiting when its next slot comes gives up this one.
        if let Some(w) = self.waiting
            && now_ns >= self.tests[w].slot_ns + ns(self.tests[w].spec.interval)
        {
            self.waiting = None;
            let slot_ns = self.tests[w].slot_ns;
            self.tests[w].ran_once = true;
            self.advance(w);
            out.push(Action::Skip {
                test: w,
                slot_ns,
                reason: "the line did not clear before the next slot".into(),
            });
        }
        out
    }

    fn exclusive_running(&self) -> Option<usize> {
        self.tests
            .iter()
            .position(|t| t.running && t.spec.class == Class::Throughput)
    }

    fn start(&mut self, i: usize, now_ns: u64) -> Action {
        let slot_ns = self.tests[i].slot_ns;
        let deadline_ns = now_ns + ns(self.tests[i].spec.deadline);
        self.tests[i].running = true;
        self.tests[i].ran_once = true;
        self.advance(i);
        Action::Start {
            test: i,
            slot_ns,
            deadline_ns,
        }
    }

    /// Test `test`'s run has finished.
    pub fn finished(&mut self, test: usize) {
        if let Some(t) = self.tests.get_mut(test) {
            t.running = false;
        }
    }

    /// When [`Scheduler::poll`] next has something to do (`None` with no tests).
    pub fn next_wake_ns(&self) -> Option<u64> {
        let due = self
            .tests
            .iter()
            .enumerate()
            .filter(|(i, _)| self.waiting != Some(*i))
            .map(|(_, t)| t.due_ns)
            .min();
        let giveup = self
            .waiting
            .map(|w| self.tests[w].slot_ns + ns(self.tests[w].spec.interval));
        due.into_iter().chain(giveup).min()
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
