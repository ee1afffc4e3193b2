//! The whole engine in-process for a simulated hour: 240 ticks at 15 s of 5,000 nodes x
//! 30 pods (1-3 containers each), driven on a virtual clock as `tests/simulation.rs`
//! drives it, without faults and without checks of the served values.
//!
//! The fake apiserver (`testdata::apiserver`) answers the engine's lists and watches; each
//! kubelet request is answered after a seeded 5-250 ms latency with the generator's
//! `/metrics/resource` text for that node, rendered at the request's wall time, so the
//! engine decodes real, fresh payloads every tick. Rendering is the harness's work and is
//! timed apart from the engine.
//!
//! What is measured (printed; nothing is asserted about the goals):
//! - engine time per tick: `std::time::Instant` around every engine call only
//!   (`handle_timeout`, `poll_timeout`, `poll_action`, `on_kubelet_response`,
//!   `on_apiserver_*`), summed over the 15 s of virtual time of each tick;
//! - per tick, apart: one `Reader::read` and one all-namespaces pod list through
//!   `serve_resource` (JSON);
//! - heap, with a counting global allocator (`stats_alloc` wrapping `System`; the
//!   workspace forbids `unsafe`, so the `GlobalAlloc` impl comes from that crate): the
//!   engine's retained heap after the last tick (live bytes freed by dropping the engine
//!   and its reader) per node; the peak of live bytes above the harness's baseline during
//!   the ticks, bracketed by the highest value after an engine call and the highest live
//!   value before a call plus what the call allocated; allocations per tick inside engine
//!   calls.
//!
//! Environment: `ENGINE_BENCH_NODES` (5000), `ENGINE_BENCH_PODS` (30 per node),
//! `ENGINE_BENCH_TICKS` (240), `ENGINE_BENCH_SEED` (1), `ENGINE_BENCH_SERVE` (1; 0 skips
//! the per-tick pod list), `ENGINE_BENCH_CSV` (a path: one line per tick),
//! `ENGINE_BENCH_EXIT_AFTER_TICKS` (set: exit without dropping anything or reporting, so
//! that `valgrind --tool=dhat` shows the live heap at the end by allocation site).
//!
//! Run: `cargo bench -p metrics-core --bench engine`; quick: `ENGINE_BENCH_NODES=500
//! ENGINE_BENCH_TICKS=20 cargo bench -p metrics-core --bench engine`.

use metrics_core::api::router::{Context, Route, serve_resource};
use metrics_core::cluster::{self, AddressType};
use metrics_core::engine::{Action, Engine, EngineConfig, Reader};
use metrics_core::http::{Method, StatusCode, header};
use metrics_core::scrape;
use metrics_core::time::{Instant, Timestamp};
use stats_alloc::{INSTRUMENTED_SYSTEM, Stats, StatsAlloc};
use std::alloc::System;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock};
use testdata::apiserver::{Apiserver, Reply, WatchId, WatchOutput};
use testdata::generator::{Cluster, ClusterSpec};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RESOLUTION: Duration = Duration::from_secs(15);
const KUBELET_TIMEOUT: Duration = Duration::from_secs(10);
const API_LATENCY: Duration = Duration::from_millis(3);
const START: Instant = Instant::from_nanos(1_000_000_000_000);
const RESOURCE_PATH: &str = "/metrics/resource";

// ---------------------------------------------------------------------------------------
// Measuring.

/// Live heap bytes (as requested by layouts; the allocator's own overhead is not counted).
fn live_bytes(s: &Stats) -> i64 {
    // stats_alloc 0.1.10 books realloc growth (shrinkage) in bytes_allocated (deallocated)
    // as well as in bytes_reallocated: the latter is not added again.
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn live_blocks(s: &Stats) -> i64 {
    s.allocations as i64 - s.deallocations as i64
}

/// Thread CPU time from `/proc/thread-self/schedstat` (nanoseconds on CPU), if readable.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The costs of one group of calls.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    time: Duration,
    calls: u64,
    allocs: u64,
    reallocs: u64,
    bytes: u64,
}

impl Cost {
    fn add(&mut self, time: Duration, before: &Stats, after: &Stats) {
        self.time += time;
        self.calls += 1;
        self.allocs += (after.allocations - before.allocations) as u64;
        self.reallocs += (after.reallocations - before.reallocations) as u64;
        self.bytes += (after.bytes_allocated - before.bytes_allocated) as u64;
    }
}

/// Every engine call goes through here (callgrind: `--toggle-collect='*engine_call*'`).
#[inline(never)]
fn engine_call<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// API serving (callgrind: `--toggle-collect='*api_call*'`).
#[inline(never)]
fn api_call<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Payload rendering, the harness's work (callgrind: `--toggle-collect='*render_call*'`).
#[inline(never)]
fn render_call<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[derive(Debug, Default)]
struct Meter {
    /// Engine calls since the last `take`.
    engine: Cost,
    /// The one `on_kubelet_response` that completed the tick (decode + store + publish).
    completing: Cost,
    /// Rendering payloads (harness) since the last `take`.
    render: Cost,
    /// Highest live bytes seen after an engine call (a lower bound of the true peak).
    peak_live: i64,
    /// Highest (live bytes before an engine call + bytes it allocated): an upper bound of
    /// the true peak over engine calls (transients inside a call are not seen otherwise).
    peak_bound: i64,
}

impl Meter {
    fn engine<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let s0 = GLOBAL.stats();
        let t0 = Clock::now();
        let r = engine_call(f);
        let dt = t0.elapsed();
        let s1 = GLOBAL.stats();
        self.engine.add(dt, &s0, &s1);
        self.note_peak(&s0, &s1);
        r
    }

    /// Like `engine`, also returning this call's own cost.
    fn engine_costed<R>(&mut self, f: impl FnOnce() -> R) -> (R, Cost) {
        let s0 = GLOBAL.stats();
        let t0 = Clock::now();
        let r = engine_call(f);
        let dt = t0.elapsed();
        let s1 = GLOBAL.stats();
        self.engine.add(dt, &s0, &s1);
        self.note_peak(&s0, &s1);
        let mut own = Cost::default();
        own.add(dt, &s0, &s1);
        (r, own)
    }

    fn note_peak(&mut self, before: &Stats, after: &Stats) {
        self.peak_live = self.peak_live.max(live_bytes(after));
        let grown = (after.bytes_allocated - before.bytes_allocated) as i64;
        self.peak_bound = self.peak_bound.max(live_bytes(before) + grown);
    }

    fn reset_peaks(&mut self) {
        let live = live_bytes(&GLOBAL.stats());
        self.peak_live = live;
        self.peak_bound = live;
    }

    fn render<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let s0 = GLOBAL.stats();
        let t0 = Clock::now();
        let r = render_call(f);
        let dt = t0.elapsed();
        let s1 = GLOBAL.stats();
        self.render.add(dt, &s0, &s1);
        r
    }

    fn take(&mut self) -> (Cost, Cost, Cost) {
        (
            std::mem::take(&mut self.engine),
            std::mem::take(&mut self.completing),
            std::mem::take(&mut self.render),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The simulated world.

#[derive(Debug)]
enum Event {
    Kubelet {
        id: scrape::RequestId,
        node: usize,
        /// Wall time the request was sent: the payload is rendered for it.
        sent: Timestamp,
    },
    ApiComplete {
        id: cluster::RequestId,
        status: u16,
        body: Vec<u8>,
    },
    ApiUnreachable {
        id: cluster::RequestId,
        reason: String,
    },
    WatchTimeout {
        id: cluster::RequestId,
        watch: WatchId,
    },
}

#[derive(Debug, Clone, Copy)]
struct Params {
    nodes: usize,
    pods: usize,
    ticks: usize,
    seed: u64,
    serve: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} does not parse")),
        Err(_) => default,
    }
}

impl Params {
    fn from_env() -> Params {
        Params {
            nodes: env_or("ENGINE_BENCH_NODES", 5000),
            pods: env_or("ENGINE_BENCH_PODS", 30),
            ticks: env_or("ENGINE_BENCH_TICKS", 240),
            seed: env_or("ENGINE_BENCH_SEED", 1),
            serve: env_or::<u8>("ENGINE_BENCH_SERVE", 1) != 0,
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Sim {
    seed: u64,
    engine: Engine,
    reader: Reader,
    cluster: Cluster,
    api: Apiserver,
    /// 127.x.y.z -> node index.
    hosts: HashMap<String, usize>,
    now: Instant,
    events: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    watches: BTreeMap<cluster::RequestId, WatchId>,
    /// Reused: actions drained from the engine, the payload buffer.
    actions: Vec<Action>,
    body: Vec<u8>,
    /// Kubelet responses delivered in the current tick (the last one stores the tick).
    responses_this_tick: usize,
    /// Bytes of payload handed to the engine in the current tick.
    payload_bytes: u64,
    expected_responses: usize,
    kubelet_requests: u64,
    cancelled: u64,
    meter: Meter,
}

impl Sim {
    fn wall(&self) -> Timestamp {
        let elapsed = self.now.saturating_duration_since(START).as_nanos() as i64;
        Timestamp::from_unix_nanos(ClusterSpec::DEFAULT_EPOCH.unix_nanos() + elapsed)
    }

    /// Seeded per-node kubelet latency, 5..=250 ms.
    fn latency(&self, node: usize) -> Duration {
        let mut h = self.seed;
        for b in self.cluster.nodes()[node].name.bytes() {
            h = mix(h ^ u64::from(b));
        }
        Duration::from_millis(5 + h % 246)
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let engine = &self.engine;
        self.meter.engine(|| engine.poll_timeout())
    }

    /// Runs until `target` inclusive, or until `stop` holds.
    fn advance(&mut self, target: Instant, stop: &dyn Fn(&Sim) -> bool) {
        let mut spins = 0u32;
        loop {
            self.pump();
            if stop(self) {
                return;
            }
            let next_event = self.events.keys().next().map(|k| k.0);
            let next = [next_event, self.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= target => {
                    if t <= self.now {
                        spins += 1;
                        assert!(spins < 10_000, "engine livelock at {:?}", self.now);
                    } else {
                        spins = 0;
                        self.now = t;
                    }
                    self.fire();
                }
                _ => {
                    self.now = self.now.max(target);
                    self.pump();
                    return;
                }
            }
        }
    }

    fn fire(&mut self) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let event = entry.remove();
            self.deliver(event);
        }
        if self.poll_timeout().is_some_and(|t| t <= self.now) {
            let (now, wall) = (self.now, self.wall());
            let engine = &mut self.engine;
            self.meter.engine(|| engine.handle_timeout(now, wall));
        }
    }

    fn deliver(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Kubelet { id, node, sent } => {
                let (cluster, body) = (&self.cluster, &mut self.body);
                self.meter.render(|| {
                    body.clear();
                    cluster.render_resource(node, sent, body);
                });
                let (engine, body) = (&mut self.engine, &self.body);
                let ((), cost) = self
                    .meter
                    .engine_costed(|| engine.on_kubelet_response(id, now, 200, body));
                self.responses_this_tick += 1;
                self.payload_bytes += self.body.len() as u64;
                if self.responses_this_tick == self.expected_responses {
                    self.meter.completing = cost;
                }
            }
            Event::ApiComplete { id, status, body } => {
                let status = StatusCode::from_u16(status).expect("a valid status");
                let engine = &mut self.engine;
                self.meter
                    .engine(|| engine.on_apiserver_response(id, now, status, &body));
            }
            Event::ApiUnreachable { id, reason } => {
                let engine = &mut self.engine;
                self.meter
                    .engine(|| engine.on_apiserver_error(id, now, &reason));
            }
            Event::WatchTimeout { id, watch } => {
                if self.watches.get(&id) == Some(&watch) {
                    self.api.close_watch(watch);
                }
            }
        }
    }

    /// Performs every action and delivers every watch line until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut progress = false;
            let (now, wall) = (self.now, self.wall());
            let mut actions = std::mem::take(&mut self.actions);
            let engine = &mut self.engine;
            self.meter.engine(|| {
                while let Some(a) = engine.poll_action(now, wall) {
                    actions.push(a);
                }
            });
            for action in actions.drain(..) {
                progress = true;
                self.perform(action);
            }
            self.actions = actions;
            let open: Vec<(cluster::RequestId, WatchId)> =
                self.watches.iter().map(|(r, w)| (*r, *w)).collect();
            for (rid, wid) in open {
                while self.watches.get(&rid) == Some(&wid) {
                    let Some(out) = self.api.poll_watch(wid) else {
                        break;
                    };
                    progress = true;
                    let engine = &mut self.engine;
                    match out {
                        WatchOutput::Line(line) => self
                            .meter
                            .engine(|| engine.on_apiserver_line(rid, now, &line)),
                        WatchOutput::End => {
                            self.watches.remove(&rid);
                            self.meter.engine(|| engine.on_apiserver_end(rid, now));
                        }
                        WatchOutput::Broken(reason) => {
                            self.watches.remove(&rid);
                            self.meter
                                .engine(|| engine.on_apiserver_error(rid, now, &reason));
                        }
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Kubelet(req) => {
                assert_eq!(req.path_and_query, RESOURCE_PATH, "{}", req.node);
                let node = *self.hosts.get(&req.host).expect("a generator node's host");
                self.kubelet_requests += 1;
                let at = self.now.saturating_add(self.latency(node));
                let sent = self.wall();
                self.schedule(
                    at,
                    Event::Kubelet {
                        id: req.id,
                        node,
                        sent,
                    },
                );
            }
            Action::CancelKubelet(id) => {
                self.cancelled += 1;
                self.events
                    .retain(|_, e| !matches!(e, Event::Kubelet { id: i, .. } if *i == id));
            }
            Action::Apiserver(req) => {
                let accept = req
                    .headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let at = self.now.saturating_add(API_LATENCY);
                match self.api.get(&req.path_and_query, accept.as_deref()) {
                    Reply::Complete { status, body, .. } => self.schedule(
                        at,
                        Event::ApiComplete {
                            id: req.id,
                            status,
                            body,
                        },
                    ),
                    Reply::Watch(watch) => {
                        self.watches.insert(req.id, watch);
                        if let Some(t) = self.api.watch_info(watch).and_then(|w| w.timeout) {
                            let at = self.now.saturating_add(t);
                            self.schedule(at, Event::WatchTimeout { id: req.id, watch });
                        }
                    }
                    Reply::Unreachable(reason) => {
                        self.schedule(at, Event::ApiUnreachable { id: req.id, reason })
                    }
                }
            }
            Action::CancelApiserver(id) => {
                if let Some(w) = self.watches.remove(&id) {
                    self.api.cancel_watch(w);
                }
                self.events.retain(|_, e| match e {
                    Event::ApiComplete { id: i, .. }
                    | Event::ApiUnreachable { id: i, .. }
                    | Event::WatchTimeout { id: i, .. } => *i != id,
                    Event::Kubelet { .. } => true,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reporting.

#[derive(Debug, Clone, Copy)]
struct TickRow {
    engine: Cost,
    completing: Cost,
    render: Cost,
    read: Cost,
    list: Cost,
    list_bytes: usize,
    /// `/metrics/resource` bytes the engine decoded.
    payload_bytes: u64,
    served_pods: usize,
    served_nodes: usize,
    /// Whole virtual tick (engine + harness), wall and thread CPU.
    loop_wall: Duration,
    loop_cpu: Option<Duration>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, values: &[Duration]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    let mean = if values.is_empty() {
        Duration::ZERO
    } else {
        values.iter().sum::<Duration>() / values.len() as u32
    };
    format!(
        "{label:<34} mean {:>9.3} ms  p50 {:>9.3}  p95 {:>9.3}  max {:>9.3}  min {:>9.3}",
        ms(mean),
        ms(percentile(&sorted, 50.0)),
        ms(percentile(&sorted, 95.0)),
        ms(sorted.last().copied().unwrap_or_default()),
        ms(sorted.first().copied().unwrap_or_default()),
    )
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let p = Params::from_env();
    println!(
        "engine bench: {} nodes x {} pods (1-3 containers), {} ticks at {:?}, seed {}, serve {}",
        p.nodes, p.pods, p.ticks, RESOLUTION, p.seed, p.serve
    );

    // ---- the harness's world ----
    let t = Clock::now();
    let spec = ClusterSpec::new(p.seed, p.nodes, p.pods);
    let cluster = Cluster::new(&spec);
    let api = Apiserver::from_cluster(&cluster);
    let containers: usize = cluster
        .nodes()
        .iter()
        .flat_map(|n| n.pods())
        .map(|pod| pod.containers().len())
        .sum();
    let hosts = cluster
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let a = n.address;
            (format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]), i)
        })
        .collect();
    println!(
        "harness: generator + fake apiserver built in {:.1} s ({} pods, {} containers)",
        t.elapsed().as_secs_f64(),
        p.nodes * p.pods,
        containers
    );

    // ---- the engine ----
    let mut config = EngineConfig::new(RESOLUTION, p.seed ^ 0x5eed);
    config.scrape.request_timeout = KUBELET_TIMEOUT;
    config.resolve.preferred_types = vec![AddressType::InternalIP, AddressType::Hostname];
    // The harness's buffers exist before the baseline is taken.
    let body = Vec::with_capacity(1 << 20);
    let actions = Vec::with_capacity(4096);
    let baseline = live_bytes(&GLOBAL.stats());
    let mut meter = Meter::default();
    meter.reset_peaks();
    let engine = meter.engine(|| Engine::new(config, START));
    let reader = meter.engine(|| engine.reader());
    let mut sim = Sim {
        seed: p.seed,
        engine,
        reader,
        cluster,
        api,
        hosts,
        now: START,
        events: BTreeMap::new(),
        seq: 0,
        watches: BTreeMap::new(),
        actions,
        body,
        responses_this_tick: 0,
        payload_bytes: 0,
        expected_responses: p.nodes,
        kubelet_requests: 0,
        cancelled: 0,
        meter,
    };

    // ---- start-up: the initial lists, until the informers have synced ----
    let wall_start = Clock::now();
    let (now, wall) = (sim.now, sim.wall());
    let engine = &mut sim.engine;
    sim.meter.engine(|| engine.handle_timeout(now, wall));
    sim.advance(START.saturating_add(Duration::from_secs(600)), &|s| {
        s.engine.synced()
    });
    assert!(sim.engine.synced(), "the informers synced");
    let (startup, _, _) = sim.meter.take();
    let sync_live = live_bytes(&GLOBAL.stats()) - baseline;
    println!(
        "start-up: synced at +{:.3} s virtual; engine {:.1} ms in {} calls, {} allocations \
         ({:.1} MiB); live heap above baseline {:.1} MiB after sync, peak {:.1}..{:.1} MiB \
         (includes the fake apiserver's list snapshots); wall {:.1} s",
        sim.now.saturating_duration_since(START).as_secs_f64(),
        ms(startup.time),
        startup.calls,
        startup.allocs,
        mib(startup.bytes as i64),
        mib(sync_live),
        mib(sim.meter.peak_live - baseline),
        mib(sim.meter.peak_bound - baseline),
        wall_start.elapsed().as_secs_f64(),
    );
    sim.meter.reset_peaks();

    // ---- the ticks: tick k owns virtual time [t0 + 15k s, t0 + 15(k+1) s) ----
    let t0 = sim.now;
    let route = Route::ListPods(None);
    let mut rows: Vec<TickRow> = Vec::with_capacity(p.ticks);
    let mut last_snapshot = sim.reader.read(sim.now).snapshot;
    let run_wall = Clock::now();
    let run_cpu = thread_cpu();
    for k in 0..p.ticks {
        let (loop_wall, loop_cpu) = (Clock::now(), thread_cpu());
        sim.responses_this_tick = 0;
        sim.payload_bytes = 0;
        let end = t0.saturating_add(RESOLUTION * (k as u32 + 1) - Duration::from_nanos(1));
        sim.advance(end, &|_| false);
        let (engine, completing, render) = sim.meter.take();
        let loop_wall = loop_wall.elapsed();
        let loop_cpu = thread_cpu().zip(loop_cpu).map(|(b, a)| b.saturating_sub(a));
        assert_eq!(
            sim.responses_this_tick, p.nodes,
            "tick {k}: every node answered"
        );

        // The API, apart: one reading and one pod list of all namespaces.
        let mut read = Cost::default();
        let s0 = GLOBAL.stats();
        let t = Clock::now();
        let reading = api_call(|| sim.reader.read(sim.now));
        read.add(t.elapsed(), &s0, &GLOBAL.stats());
        assert!(
            !Arc::ptr_eq(&reading.snapshot, &last_snapshot),
            "tick {k} was stored"
        );
        last_snapshot = Arc::clone(&reading.snapshot);
        let served_nodes = reading.snapshot.nodes().count();
        let served_pods = reading.snapshot.pods(None).count();
        let mut list = Cost::default();
        let mut list_bytes = 0;
        if p.serve {
            // A fresh body per request, as a server has (dropped below, so that it does
            // not count in the engine's peak).
            let mut list_body = Vec::new();
            let ignore = |_: f64| {};
            let ctx = Context {
                now: sim.wall(),
                snapshot: &reading.snapshot,
                objects: &reading.view,
                observe_freshness: &ignore,
            };
            let s0 = GLOBAL.stats();
            let t = Clock::now();
            let head = api_call(|| {
                serve_resource(
                    &route,
                    &Method::GET,
                    Some("application/json"),
                    None,
                    None,
                    &ctx,
                    &mut list_body,
                )
            });
            list.add(t.elapsed(), &s0, &GLOBAL.stats());
            assert_eq!(head.status(), StatusCode::OK);
            list_bytes = black_box(&list_body).len();
        }
        drop(reading);
        rows.push(TickRow {
            engine,
            completing,
            render,
            read,
            list,
            list_bytes,
            payload_bytes: sim.payload_bytes,
            served_pods,
            served_nodes,
            loop_wall,
            loop_cpu,
        });
        if (k + 1) % 20 == 0 || k == 0 || k + 1 == p.ticks {
            eprintln!(
                "tick {:>3}: engine {:>8.2} ms ({} calls, {} allocs), completing call {:>7.2} ms, \
                 render {:>8.2} ms, list {:>8.2} ms, served {} nodes / {} pods",
                k + 1,
                ms(engine.time),
                engine.calls,
                engine.allocs,
                ms(completing.time),
                ms(render.time),
                ms(list.time),
                served_nodes,
                served_pods,
            );
        }
    }
    let run_wall = run_wall.elapsed();
    if std::env::var_os("ENGINE_BENCH_EXIT_AFTER_TICKS").is_some() {
        // For `valgrind --tool=dhat`: its t-end figures then show what is live now.
        std::process::exit(0);
    }
    let run_cpu = thread_cpu().zip(run_cpu).map(|(b, a)| b.saturating_sub(a));
    drop(last_snapshot);

    // ---- the engine's retained heap: what dropping it (and its reader) frees ----
    let before = GLOBAL.stats();
    let peak_live = sim.meter.peak_live - baseline;
    let peak_bound = sim.meter.peak_bound - baseline;
    let Sim {
        engine,
        reader,
        cluster,
        api,
        events,
        kubelet_requests,
        cancelled,
        ..
    } = sim;
    drop(reader);
    drop(engine);
    let after = GLOBAL.stats();
    let retained = live_bytes(&before) - live_bytes(&after);
    let retained_blocks = live_blocks(&before) - live_blocks(&after);
    let harness_growth = live_bytes(&after) - baseline;
    drop((cluster, api, events));

    // ---- report ----
    let n = p.nodes.max(1) as f64;
    let engine_times: Vec<Duration> = rows.iter().map(|r| r.engine.time).collect();
    let steady: Vec<Duration> = engine_times.iter().skip(1).copied().collect();
    let completing: Vec<Duration> = rows.iter().skip(1).map(|r| r.completing.time).collect();
    let other: Vec<Duration> = rows
        .iter()
        .skip(1)
        .map(|r| r.engine.time.saturating_sub(r.completing.time))
        .collect();
    let render: Vec<Duration> = rows.iter().map(|r| r.render.time).collect();
    let reads: Vec<Duration> = rows.iter().map(|r| r.read.time).collect();
    let lists: Vec<Duration> = rows.iter().map(|r| r.list.time).collect();
    let mean_u64 = |f: &dyn Fn(&TickRow) -> u64| -> f64 {
        let steady = rows.iter().skip(1);
        let count = steady.len().max(1) as f64;
        steady.map(f).sum::<u64>() as f64 / count
    };
    let first = rows.first().copied();

    let mut out = String::new();
    let _ = writeln!(out, "\n== engine per tick ({} ticks) ==", rows.len());
    if let Some(f) = first {
        let _ = writeln!(
            out,
            "first tick                         {:>9.3} ms  ({} calls, {} allocations, {:.1} MiB allocated)",
            ms(f.engine.time),
            f.engine.calls,
            f.engine.allocs,
            mib(f.engine.bytes as i64)
        );
    }
    let _ = writeln!(out, "{}", summary("all ticks", &engine_times));
    let _ = writeln!(out, "{}", summary("ticks 2.. (steady)", &steady));
    let _ = writeln!(
        out,
        "{}",
        summary("  completing call (decode+store)", &completing)
    );
    let _ = writeln!(out, "{}", summary("  everything else", &other));
    let _ = writeln!(
        out,
        "steady mean per node               {:>9.3} µs",
        steady.iter().sum::<Duration>().as_secs_f64() * 1e6 / steady.len().max(1) as f64 / n
    );
    let payload = mean_u64(&|r| r.payload_bytes);
    let steady_mean = steady.iter().sum::<Duration>().as_secs_f64() / steady.len().max(1) as f64;
    let _ = writeln!(
        out,
        "steady payload decoded per tick    {:>9.1} MiB ({:.1} KiB per node); engine time / byte = {:.2} GB/s",
        payload / (1024.0 * 1024.0),
        payload / 1024.0 / n,
        payload / steady_mean.max(1e-12) / 1e9
    );
    let _ = writeln!(
        out,
        "steady engine calls per tick       {:>9.0}",
        mean_u64(&|r| r.engine.calls)
    );
    let _ = writeln!(
        out,
        "steady allocations per tick        {:>9.0}  ({:.1} per node; reallocs {:.0}; {:.1} MiB allocated)",
        mean_u64(&|r| r.engine.allocs),
        mean_u64(&|r| r.engine.allocs) / n,
        mean_u64(&|r| r.engine.reallocs),
        mean_u64(&|r| r.engine.bytes) / (1024.0 * 1024.0)
    );
    let _ = writeln!(
        out,
        "  of which the completing call     {:>9.0}",
        mean_u64(&|r| r.completing.allocs)
    );
    let _ = writeln!(out, "\n== apart from the engine ==");
    let mut sorted_reads = reads.clone();
    sorted_reads.sort();
    let _ = writeln!(
        out,
        "Reader::read                       p50 {:.2} µs, max {:.2} µs",
        percentile(&sorted_reads, 50.0).as_secs_f64() * 1e6,
        sorted_reads
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e6
    );
    if p.serve {
        let _ = writeln!(
            out,
            "{}",
            summary("pod list, all namespaces (JSON)", &lists)
        );
        if let Some(last) = rows.last() {
            let _ = writeln!(
                out,
                "  last list: {} bytes, {} pods served of {}; {} nodes served; {:.0} allocations",
                last.list_bytes,
                last.served_pods,
                p.nodes * p.pods,
                last.served_nodes,
                mean_u64(&|r| r.list.allocs)
            );
        }
    }
    let _ = writeln!(out, "{}", summary("rendering payloads (harness)", &render));
    let _ = writeln!(out, "\n== heap ==");
    let _ = writeln!(
        out,
        "engine retained after the last tick {:>9.1} MiB in {} blocks = {:.1} KiB per node \
         ({:.0} B per container)",
        mib(retained),
        retained_blocks,
        retained as f64 / 1024.0 / n,
        retained as f64 / containers.max(1) as f64
    );
    let _ = writeln!(
        out,
        "peak live during the ticks, above the harness baseline: {:.1} MiB = {:.1} KiB per node \
         (sampled after each engine call; a lower bound)",
        mib(peak_live),
        peak_live as f64 / 1024.0 / n
    );
    let _ = writeln!(
        out,
        "  upper bound (live before a call + bytes the call allocated): {:.1} MiB = {:.1} KiB per node",
        mib(peak_bound),
        peak_bound as f64 / 1024.0 / n
    );
    let _ = writeln!(
        out,
        "harness growth over the run (not the engine's) {:.1} MiB; harness baseline {:.1} MiB; process peak RSS {:.1} MiB",
        mib(harness_growth),
        mib(baseline),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0
    );
    let _ = writeln!(out, "\n== machine ==");
    let ratios: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            r.loop_cpu
                .map(|c| c.as_secs_f64() / r.loop_wall.as_secs_f64())
        })
        .collect();
    let min_ratio = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let _ = writeln!(
        out,
        "tick loop (engine + harness): wall {:.1} s, thread CPU {} (CPU/wall {}, lowest tick {:.3}); \
         kubelet requests {}, cancelled {}",
        run_wall.as_secs_f64(),
        run_cpu.map_or("n/a".into(), |c| format!("{:.1} s", c.as_secs_f64())),
        run_cpu.map_or("n/a".into(), |c| format!(
            "{:.3}",
            c.as_secs_f64() / run_wall.as_secs_f64()
        )),
        min_ratio,
        kubelet_requests,
        cancelled
    );
    print!("{out}");

    if let Ok(path) = std::env::var("ENGINE_BENCH_CSV") {
        let mut csv = String::from(
            "tick,engine_us,engine_calls,engine_allocs,engine_bytes,completing_us,render_us,read_us,list_us,list_allocs,list_bytes,payload_bytes,served_pods,loop_wall_us,loop_cpu_us\n",
        );
        for (k, r) in rows.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                k + 1,
                r.engine.time.as_micros(),
                r.engine.calls,
                r.engine.allocs,
                r.engine.bytes,
                r.completing.time.as_micros(),
                r.render.time.as_micros(),
                r.read.time.as_micros(),
                r.list.time.as_micros(),
                r.list.allocs,
                r.list_bytes,
                r.payload_bytes,
                r.served_pods,
                r.loop_wall.as_micros(),
                r.loop_cpu.map_or(0, |c| c.as_micros()),
            );
        }
        std::fs::write(&path, csv).expect("write the CSV");
    }
}
