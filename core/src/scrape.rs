//! The scrape scheduler: each resolution tick, one request per selected node, spread
//! over a random delay as upstream does, bounded in concurrency and by deadlines; the
//! answers decoded and gathered into one batch per tick for storage.
//!
//! Sans-IO: the caller hands in the targets, the time and each response; the scheduler
//! hands out requests, cancellations, its next wake-up time and finished cycles.

use crate::kubelet::{DecodeError, NodeBatch, resource, summary};
use crate::time::{Instant, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// Where a node is scraped (resolved from its Node object by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    pub host: String,
    pub port: u16,
    /// `/metrics/resource` or the node's `metrics.k8s.io/resource-metrics-path` annotation.
    pub resource_path: String,
    /// The node's Ready condition; failures of NotReady nodes are logged quietly.
    pub ready: bool,
}

/// The kubelet endpoint a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `/metrics/resource` (Prometheus text), the default.
    Resource,
    /// `/stats/summary?only_cpu_and_memory=true` (JSON), by flag or after a 404.
    Summary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub resolution: Duration,
    /// `--kubelet-request-timeout`, counted from the end of the node's random delay.
    pub request_timeout: Duration,
    /// Requests in flight at once (upstream has no bound).
    pub max_in_flight: usize,
    /// Scrape `/stats/summary` instead of `/metrics/resource`.
    pub prefer_summary: bool,
    /// Largest response body accepted from a kubelet.
    pub max_response_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resolution: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 512,
            prefer_summary: false,
            max_response_bytes: 16 << 20,
        }
    }
}

/// Identifies a request across its completion or cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A request for the runtime to perform (TLS, credentials and headers are its business:
/// this is only where and what).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub node: String,
    pub host: String,
    pub port: u16,
    pub path_and_query: String,
    pub source: Source,
    /// Abort and report [`Scheduler::on_error`] (or nothing) after this.
    pub deadline: Instant,
}

/// Why a node contributed nothing this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The node's Node object gave no usable address.
    NoAddress(String),
    Status(u16),
    Decode(DecodeError),
    TooLarge {
        limit: usize,
    },
    Timeout,
    /// Connection, TLS or read error, as the runtime reported it.
    Transport(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoAddress(msg) | Failure::Transport(msg) => f.write_str(msg),
            Failure::Status(code) => {
                let text = http::StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "request failed, status: \"{code} {text}\"")
            }
            Failure::Decode(e) => write!(f, "{e}"),
            Failure::TooLarge { limit } => write!(f, "response body exceeds {limit} bytes"),
            Failure::Timeout => f.write_str("timeout to access kubelet"),
        }
    }
}

/// One request's outcome, for self-metrics and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub node: String,
    /// From sending to completion (excludes the random delay), zero for address failures.
    pub duration: Duration,
    /// Wall-clock time the request was sent.
    pub sent: Timestamp,
    pub result: Result<(), Failure>,
    pub ready: bool,
}

/// A finished tick: the batches to store and what happened to each node.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub started: Instant,
    pub finished: Instant,
    pub batches: Vec<(String, NodeBatch)>,
    pub outcomes: Vec<Outcome>,
}

#[derive(Debug)]
struct Planned {
    due: Instant,
    target: Target,
    source: Source,
}

#[derive(Debug)]
struct InFlight {
    target: Target,
    source: Source,
    sent: Instant,
    sent_wall: Timestamp,
    deadline: Instant,
}

#[derive(Debug)]
struct Running {
    started: Instant,
    deadline: Instant,
    /// Sorted by due time, latest first (popped from the end).
    planned: Vec<Planned>,
    in_flight: BTreeMap<RequestId, InFlight>,
    batches: Vec<(String, NodeBatch)>,
    outcomes: Vec<Outcome>,
}

/// SplitMix64: the seeded source of the per-node delays, so simulations replay exactly.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The scrape loop's state.
#[derive(Debug)]
pub struct Scheduler {
    config: Config,
    rng: Rng,
    next_id: u64,
    /// Nodes whose kubelet answered 404 on `/metrics/resource`: scraped through the
    /// Summary API from then on.
    summary_nodes: BTreeSet<String>,
    running: Option<Running>,
    next_tick: Option<Instant>,
    last_started: Option<Instant>,
}

const SUMMARY_PATH: &str = "/stats/summary?only_cpu_and_memory=true";

impl Scheduler {
    pub fn new(config: Config, seed: u64) -> Scheduler {
        Scheduler {
            config,
            rng: Rng(seed),
            next_id: 0,
            summary_nodes: BTreeSet::new(),
            running: None,
            next_tick: None,
            last_started: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Start ticking: the first cycle is due at `now` (informers synced), then every
    /// resolution after it.
    pub fn start(&mut self, now: Instant) {
        if self.next_tick.is_none() && self.last_started.is_none() {
            self.next_tick = Some(now);
        }
    }

    /// Whether a cycle should start now (the caller then gathers targets and calls
    /// [`Scheduler::begin_cycle`]).
    pub fn tick_due(&self, now: Instant) -> bool {
        self.next_tick.is_some_and(|t| now >= t) && self.running.is_none()
    }

    /// When the most recent cycle started (the liveness check reads it).
    pub fn last_started(&self) -> Option<Instant> {
        self.last_started
    }

    /// Starts a cycle over `targets`; `unresolved` are nodes without a usable address,
    /// which fail at once. Ticks stay on the grid start + k × resolution: a late tick
    /// runs once and the missed ones are dropped, as Go's ticker does.
    pub fn begin_cycle(
        &mut self,
        now: Instant,
        targets: Vec<Target>,
        unresolved: Vec<(String, String)>,
        wall: Timestamp,
    ) {
        let grid = self.next_tick.unwrap_or(now);
        let resolution = self.config.resolution.max(Duration::from_millis(1));
        let mut next = grid.saturating_add(resolution);
        while next <= now {
            next = next.saturating_add(resolution);
        }
        self.next_tick = Some(next);
        self.last_started = Some(now);
        // Upstream spreads requests over [0, min(8 ms × nodes, 4 s)) in whole milliseconds.
        let spread_ms = (8 * targets.len() as u64).min(4000);
        let mut planned: Vec<Planned> = targets
            .into_iter()
            .map(|target| {
                let delay = Duration::from_millis(self.rng.below(spread_ms));
                let source =
                    if self.config.prefer_summary || self.summary_nodes.contains(&target.node) {
                        Source::Summary
                    } else {
                        Source::Resource
                    };
                Planned {
                    due: now.saturating_add(delay),
                    target,
                    source,
                }
            })
            .collect();
        planned.sort_by(|a, b| {
            b.due
                .cmp(&a.due)
                .then_with(|| b.target.node.cmp(&a.target.node))
        });
        let outcomes = unresolved
            .into_iter()
            .map(|(node, message)| Outcome {
                node,
                duration: Duration::ZERO,
                sent: wall,
                result: Err(Failure::NoAddress(message)),
                ready: true,
            })
            .collect();
        self.running = Some(Running {
            started: now,
            deadline: now.saturating_add(self.config.resolution),
            planned,
            in_flight: BTreeMap::new(),
            batches: Vec::new(),
            outcomes,
        });
    }

    /// The next request whose delay has passed, within the concurrency bound.
    pub fn poll_request(&mut self, now: Instant, wall: Timestamp) -> Option<Request> {
        let running = self.running.as_mut()?;
        if running.in_flight.len() >= self.config.max_in_flight.max(1)
            || running.planned.last().is_none_or(|p| p.due > now)
        {
            return None;
        }
        let planned = running.planned.pop()?;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let deadline = now
            .saturating_add(self.config.request_timeout)
            .min(running.deadline);
        let path_and_query = match planned.source {
            Source::Resource => planned.target.resource_path.clone(),
            Source::Summary => SUMMARY_PATH.to_string(),
        };
        let request = Request {
            id,
            node: planned.target.node.clone(),
            host: planned.target.host.clone(),
            port: planned.target.port,
            path_and_query,
            source: planned.source,
            deadline,
        };
        running.in_flight.insert(
            id,
            InFlight {
                target: planned.target,
                source: planned.source,
                sent: now,
                sent_wall: wall,
                deadline,
            },
        );
        Some(request)
    }

    /// A response arrived (any status; the body complete).
    pub fn on_response(&mut self, id: RequestId, now: Instant, status: u16, body: &[u8]) {
        let limit = self.config.max_response_bytes;
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let Some(req) = running.in_flight.remove(&id) else {
            return;
        };
        let result = if body.len() > limit {
            Err(Failure::TooLarge { limit })
        } else if status == 404 && req.source == Source::Resource {
            // An old kubelet without /metrics/resource: remember, and ask again now.
            self.summary_nodes.insert(req.target.node.clone());
            running.planned.push(Planned {
                due: now,
                target: req.target,
                source: Source::Summary,
            });
            return;
        } else if status != 200 {
            Err(Failure::Status(status))
        } else {
            let decoded = match req.source {
                Source::Resource => resource::decode(body, req.sent_wall),
                Source::Summary => summary::decode(body),
            };
            decoded
                .map_err(Failure::Decode)
                .map(|batch| running.batches.push((req.target.node.clone(), batch)))
        };
        running.outcomes.push(Outcome {
            node: req.target.node,
            duration: now.saturating_duration_since(req.sent),
            sent: req.sent_wall,
            result,
            ready: req.target.ready,
        });
    }

    /// The runtime could not complete the request (connect, TLS, read, size).
    pub fn on_error(&mut self, id: RequestId, now: Instant, failure: Failure) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let Some(req) = running.in_flight.remove(&id) else {
            return;
        };
        running.outcomes.push(Outcome {
            node: req.target.node,
            duration: now.saturating_duration_since(req.sent),
            sent: req.sent_wall,
            result: Err(failure),
            ready: req.target.ready,
        });
    }

    /// Expires requests past their deadline; returns their ids so the runtime can abort
    /// them. At the cycle deadline everything still planned or in flight fails.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<RequestId> {
        let Some(running) = self.running.as_mut() else {
            return Vec::new();
        };
        let expired: Vec<RequestId> = running
            .in_flight
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            if let Some(req) = running.in_flight.remove(id) {
                running.outcomes.push(Outcome {
                    node: req.target.node,
                    duration: now.saturating_duration_since(req.sent),
                    sent: req.sent_wall,
                    result: Err(Failure::Timeout),
                    ready: req.target.ready,
                });
            }
        }
        if now >= running.deadline {
            // Delays are not cancellable upstream either; past the tick deadline the
            // remaining nodes simply miss this tick.
            for p in running.planned.drain(..) {
                running.outcomes.push(Outcome {
                    node: p.target.node,
                    duration: Duration::ZERO,
                    sent: Timestamp::default(),
                    result: Err(Failure::Timeout),
                    ready: p.target.ready,
                });
            }
        }
        expired
    }

    /// The finished cycle, once every node answered or failed.
    pub fn poll_cycle(&mut self, now: Instant) -> Option<Cycle> {
        let done = self
            .running
            .as_ref()
            .is_some_and(|r| r.planned.is_empty() && r.in_flight.is_empty());
        if !done {
            return None;
        }
        let running = self.running.take()?;
        Some(Cycle {
            started: running.started,
            finished: now,
            batches: running.batches,
            outcomes: running.outcomes,
        })
    }

    /// When the scheduler next needs [`Scheduler::handle_timeout`] or a poll.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let running = self.running.as_ref().map(|r| {
            // At the concurrency bound a due request waits for a completion, not a timer.
            let due = r
                .planned
                .last()
                .map(|p| p.due)
                .filter(|_| r.in_flight.len() < self.config.max_in_flight.max(1));
            let deadline = r.in_flight.values().map(|f| f.deadline).min();
            [due, deadline, Some(r.deadline)]
                .into_iter()
                .flatten()
                .min()
        });
        [
            running.flatten(),
            self.next_tick.filter(|_| self.running.is_none()),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(node: &str) -> Target {
        Target {
            node: node.into(),
            host: format!("{node}.local"),
            port: 10250,
            resource_path: "/metrics/resource".into(),
            ready: true,
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_nanos(n * 1_000_000)
    }

    const NODE_PAYLOAD: &[u8] =
        b"node_cpu_usage_seconds_total 1 1\nnode_memory_working_set_bytes 1 1\n";

    fn config() -> Config {
        Config {
            resolution: Duration::from_secs(15),
            request_timeout: Duration::from_secs(3),
            ..Config::default()
        }
    }

    /// Drives a cycle: every request is answered after `delay_of(node)` unless that
    /// exceeds its deadline. Returns the cycle and when it finished.
    fn run(nodes: &[&str], delay_of: impl Fn(&str) -> u64, config: Config) -> Cycle {
        let mut s = Scheduler::new(config, 7);
        s.start(ms(0));
        assert!(s.tick_due(ms(0)));
        s.begin_cycle(
            ms(0),
            nodes.iter().map(|n| target(n)).collect(),
            Vec::new(),
            Timestamp::from_unix_secs(1_700_000_000),
        );
        let mut pending: Vec<(Instant, RequestId)> = Vec::new();
        let mut now = ms(0);
        for _ in 0..100_000 {
            while let Some(req) = s.poll_request(now, Timestamp::from_unix_secs(1_700_000_000)) {
                pending.push((
                    now.saturating_add(Duration::from_millis(delay_of(&req.node))),
                    req.id,
                ));
            }
            pending.retain(|(at, id)| {
                if *at <= now {
                    s.on_response(*id, now, 200, NODE_PAYLOAD);
                    false
                } else {
                    true
                }
            });
            s.handle_timeout(now);
            if let Some(cycle) = s.poll_cycle(now) {
                return cycle;
            }
            let next = [s.poll_timeout(), pending.iter().map(|(at, _)| *at).min()]
                .into_iter()
                .flatten()
                .min()
                .expect("something to wait for");
            now = next.max(now);
        }
        panic!("cycle never finished");
    }

    /// Kubelet-spec case 48: every node answers within the timeout: all are scraped, and
    /// the cycle ends before the timeout.
    #[test]
    fn case_48_all_nodes_within_timeout() {
        let cycle = run(
            &["node1", "node-no-host", "node3", "node4"],
            |_| 1000,
            config(),
        );
        assert_eq!(cycle.batches.len(), 4);
        assert!(cycle.finished <= ms(3000));
    }

    /// Case 49: one slow node misses the tick, the others are stored.
    #[test]
    fn case_49_slow_node_drops_out() {
        let cycle = run(
            &["node1", "node2", "node3", "node4"],
            |n| if n == "node1" { 4000 } else { 2000 },
            config(),
        );
        let nodes: Vec<&str> = cycle.batches.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!nodes.contains(&"node1") && nodes.len() == 3);
        let failure = cycle
            .outcomes
            .iter()
            .find(|o| o.node == "node1")
            .expect("node1 outcome");
        assert_eq!(failure.result, Err(Failure::Timeout));
    }

    /// Case 50: the tick deadline (resolution) bounds everything, whatever the timeout.
    #[test]
    fn case_50_tick_deadline_wins() {
        let cfg = Config {
            resolution: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let cycle = run(&["a", "b"], |_| 4000, cfg);
        assert!(cycle.batches.is_empty());
        assert!(cycle.finished <= ms(1000));
    }

    /// Case 52: a node without an address fails alone.
    #[test]
    fn case_52_unresolvable_node_fails_alone() {
        let mut s = Scheduler::new(config(), 1);
        s.start(ms(0));
        s.begin_cycle(
            ms(0),
            vec![target("a")],
            vec![("b".into(), "no address matched types [InternalIP]".into())],
            Timestamp::default(),
        );
        let req = s
            .poll_request(ms(10), Timestamp::default())
            .expect("a's request");
        s.on_response(req.id, ms(20), 200, NODE_PAYLOAD);
        let cycle = s.poll_cycle(ms(20)).expect("finished");
        assert_eq!(cycle.batches.len(), 1);
        assert!(matches!(
            cycle
                .outcomes
                .iter()
                .find(|o| o.node == "b")
                .map(|o| &o.result),
            Some(Err(Failure::NoAddress(_)))
        ));
    }

    /// Case 53: no nodes at all (a failed listing): the cycle completes empty.
    #[test]
    fn case_53_no_targets_completes() {
        let mut s = Scheduler::new(config(), 1);
        s.start(ms(0));
        s.begin_cycle(ms(0), Vec::new(), Vec::new(), Timestamp::default());
        let cycle = s.poll_cycle(ms(0)).expect("finished at once");
        assert!(cycle.batches.is_empty());
    }

    #[test]
    fn section_5_3_requests_spread_over_the_upstream_window_and_respect_concurrency() {
        let cfg = Config {
            max_in_flight: 3,
            ..config()
        };
        let mut s = Scheduler::new(cfg, 42);
        s.start(ms(0));
        let targets: Vec<Target> = (0..100).map(|i| target(&format!("n{i:03}"))).collect();
        s.begin_cycle(ms(0), targets, Vec::new(), Timestamp::default());
        // Far past every delay (8 ms × 100 = 800 ms window), only 3 may be in flight.
        let mut sent = Vec::new();
        while let Some(r) = s.poll_request(ms(900), Timestamp::default()) {
            sent.push(r);
        }
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|r| r.deadline == ms(900 + 3000)));
    }

    #[test]
    fn section_5_4_summary_fallback_after_404_is_remembered() {
        let mut s = Scheduler::new(config(), 1);
        s.start(ms(0));
        s.begin_cycle(ms(0), vec![target("old")], Vec::new(), Timestamp::default());
        // One node: its delay is below 8 ms.
        let first = s
            .poll_request(ms(8), Timestamp::default())
            .expect("request");
        assert_eq!(first.path_and_query, "/metrics/resource");
        s.on_response(first.id, ms(9), 404, b"404 page not found");
        let retry = s
            .poll_request(ms(9), Timestamp::default())
            .expect("summary retry in the same tick");
        assert_eq!(
            (retry.source, retry.path_and_query.as_str()),
            (Source::Summary, SUMMARY_PATH)
        );
        s.on_response(retry.id, ms(12), 200, br#"{"node":{"nodeName":"old","cpu":{"time":"2025-01-01T00:00:00Z","usageCoreNanoSeconds":5},"memory":{"workingSetBytes":7}},"pods":[]}"#);
        let cycle = s.poll_cycle(ms(12)).expect("done");
        assert!(cycle.batches[0].1.node.is_some());
        // Next tick asks the Summary API straight away.
        assert!(s.tick_due(ms(15_000)));
        s.begin_cycle(
            ms(15_000),
            vec![target("old")],
            Vec::new(),
            Timestamp::default(),
        );
        let next = s
            .poll_request(ms(16_000), Timestamp::default())
            .expect("request");
        assert_eq!(next.source, Source::Summary);
    }

    #[test]
    fn section_5_5_failures_are_per_node() {
        let mut s = Scheduler::new(config(), 3);
        s.start(ms(0));
        s.begin_cycle(
            ms(0),
            vec![
                target("ok"),
                target("garbage"),
                target("e500"),
                target("big"),
                target("down"),
            ],
            Vec::new(),
            Timestamp::default(),
        );
        let mut reqs = Vec::new();
        while let Some(r) = s.poll_request(ms(100), Timestamp::default()) {
            reqs.push(r);
        }
        for r in reqs {
            match r.node.as_str() {
                "ok" => s.on_response(r.id, ms(110), 200, NODE_PAYLOAD),
                "garbage" => {
                    s.on_response(r.id, ms(110), 200, b"node_cpu_usage_seconds_total{ 1\n")
                }
                "e500" => s.on_response(r.id, ms(110), 500, b"oops"),
                "big" => s.on_error(r.id, ms(110), Failure::TooLarge { limit: 16 << 20 }),
                _ => s.on_error(
                    r.id,
                    ms(110),
                    Failure::Transport("connection refused".into()),
                ),
            }
        }
        let cycle = s.poll_cycle(ms(110)).expect("done");
        let stored: Vec<&str> = cycle.batches.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(stored, ["ok"]);
        let e500 = cycle
            .outcomes
            .iter()
            .find(|o| o.node == "e500")
            .expect("outcome");
        assert_eq!(
            e500.result.as_ref().map_err(|e| e.to_string()),
            Err("request failed, status: \"500 Internal Server Error\"".to_string())
        );
    }

    #[test]
    fn section_5_2_ticks_stay_on_the_grid_and_skip_missed_ones() {
        let mut s = Scheduler::new(config(), 1);
        s.start(ms(0));
        s.begin_cycle(ms(0), Vec::new(), Vec::new(), Timestamp::default());
        s.poll_cycle(ms(0)).expect("done");
        assert_eq!(s.poll_timeout(), Some(ms(15_000)));
        // Stalled until 47 s: one late tick now, the next on the grid at 60 s.
        assert!(s.tick_due(ms(47_000)));
        s.begin_cycle(ms(47_000), Vec::new(), Vec::new(), Timestamp::default());
        s.poll_cycle(ms(47_000)).expect("done");
        assert_eq!(s.poll_timeout(), Some(ms(60_000)));
        assert_eq!(s.last_started(), Some(ms(47_000)));
    }

    #[test]
    fn same_seed_same_delays() {
        let plan = |seed| {
            let mut s = Scheduler::new(config(), seed);
            s.start(ms(0));
            s.begin_cycle(
                ms(0),
                (0..20).map(|i| target(&format!("n{i}"))).collect(),
                Vec::new(),
                Timestamp::default(),
            );
            let mut order = Vec::new();
            let mut t = 0;
            while order.len() < 20 {
                while let Some(r) = s.poll_request(ms(t), Timestamp::default()) {
                    order.push((t, r.node));
                }
                t += 1;
            }
            order
        };
        assert_eq!(plan(9), plan(9));
        assert_ne!(plan(9), plan(10));
    }
}
