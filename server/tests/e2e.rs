//! End-to-end: the real binary's `demo` (fake apiserver with the aggregator's proxy,
//! fake kubelets on loopback, the real server on the runtime under test), queried with
//! the real `kubectl`, and every value compared with the generator's truth: CPU within
//! 5%, memory exact.
//!
//! Needs `kubectl` on `PATH` (CI installs it) and nothing but loopback. The demos run
//! one after the other: each wants the kubelet addresses 127.1.0.x:10250.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use testdata::generator::{Cluster, ClusterSpec};

const BIN: &str = env!("CARGO_BIN_EXE_metrics-server");
const SEED: u64 = 7;
const NODES: usize = 3;
const PODS_PER_NODE: usize = 6;
/// Two scrapes 10 s apart, plus start-up (a debug build included).
const READY_WITHIN: Duration = Duration::from_secs(90);
/// The server's shutdown grace period is 30 s; with nothing in flight it takes
/// milliseconds.
const EXIT_WITHIN: Duration = Duration::from_secs(35);
const MIB: u64 = 1024 * 1024;

static ONE_DEMO_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn demo_on_tokio_serves_kubectl_the_generators_truth() {
    end_to_end("tokio");
}

#[test]
fn demo_on_smol_serves_kubectl_the_generators_truth() {
    end_to_end("smol");
}

#[test]
fn demo_kubelet_moves_to_another_port_when_10250_is_taken() {
    require_kubectl();
    let _serial = one_demo_at_a_time();
    // node-000001's kubelet address is taken (if this fails, something else holds it).
    let _taken = TcpListener::bind(("127.1.0.2", 10250));
    let truth = Truth::new();
    let mut demo = Demo::start("tokio");
    assert!(
        demo.stdout()
            .iter()
            .any(|l| l.contains("using node status ports")),
        "{}",
        demo.diagnostics()
    );
    check_top_nodes(&demo, &truth);
    check_top_pods(&demo, &truth);
    let status = demo.terminate();
    assert_eq!(status.code(), Some(0), "{}", demo.diagnostics());
}

#[test]
fn bad_flag_values_exit_non_zero_with_one_line_naming_the_flag() {
    let cases: [(&[&str], &str); 4] = [
        (&["demo", "--nodes=many"], "--nodes"),
        (&["demo", "--seed=-4"], "--seed"),
        (&["--runtime=threads", "demo"], "--runtime"),
        (&["demo", "--metric-resolution=5s"], "metric-resolution"),
    ];
    for (args, flag) in cases {
        let out = Command::new(BIN)
            .args(args)
            .output()
            .expect("the binary runs");
        assert!(!out.status.success(), "{args:?} should fail");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: one line expected, got {stderr:?}"
        );
        assert!(
            lines[0].starts_with("Error: ") && lines[0].contains(flag),
            "{args:?}: {:?} should name {flag}",
            lines[0]
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

fn end_to_end(runtime: &str) {
    require_kubectl();
    let _serial = one_demo_at_a_time();
    let truth = Truth::new();
    let started = Instant::now();
    let mut demo = Demo::start(runtime);
    let ready_after = started.elapsed();

    let checks = Instant::now();
    check_top_nodes(&demo, &truth);
    check_top_pods(&demo, &truth);
    check_top_pod_containers(&demo, &truth);
    check_raw_nodes(&demo, &truth);
    check_raw_pods(&demo, &truth);
    check_get_node_metrics(&demo, &truth);
    check_direct_access(&mut demo);
    let checked_in = checks.elapsed();

    let stopping = Instant::now();
    let status = demo.terminate();
    let stopped_in = stopping.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "the demo should exit 0 on SIGTERM ({status}); {}",
        demo.diagnostics()
    );
    assert!(
        demo.stdout()
            .iter()
            .any(|l| l == "metrics-server demo stopped"),
        "{}",
        demo.diagnostics()
    );
    let work_dir = demo.work_dir();
    assert!(
        !work_dir.exists(),
        "{} should be removed on exit",
        work_dir.display()
    );
    eprintln!(
        "e2e {runtime}: ready after {ready_after:.1?}, kubectl checks {checked_in:.1?}, exit 0 after SIGTERM in {stopped_in:.1?}"
    );
}

fn one_demo_at_a_time() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    ONE_DEMO_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn require_kubectl() {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`kubectl version --client` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "kubectl is needed by the end-to-end tests (v1.32; CI installs it) but could not be run: {e}"
        ),
    }
}

// ---------------------------------------------------------------------------------------
// The demo process
// ---------------------------------------------------------------------------------------

/// A running `metrics-server demo`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Demo {
    child: Child,
    dir: TempDir,
    kubeconfig: PathBuf,
    lines: Receiver<String>,
    stdout: Vec<String>,
    log: PathBuf,
}

impl Demo {
    /// Starts the demo and waits for its `ready:` line.
    fn start(runtime: &str) -> Demo {
        let dir = TempDir::new(runtime);
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("demo.log");
        let stderr = File::create(&log).expect("log file");
        let mut child = Command::new(BIN)
            .args(["--runtime", runtime, "demo"])
            .args(["--nodes", &NODES.to_string()])
            .args(["--pods-per-node", &PODS_PER_NODE.to_string()])
            .args(["--seed", &SEED.to_string()])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the demo starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Demo {
            child,
            dir,
            kubeconfig,
            lines,
            stdout: Vec::new(),
            log,
        };
        demo.wait_for_ready();
        demo
    }

    fn wait_for_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("ready:");
                    self.stdout.push(line);
                    if ready {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no ready line within {READY_WITHIN:?}; {}",
                        self.diagnostics()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait for the demo");
                    panic!(
                        "the demo exited ({status}) before it was ready; {}",
                        self.diagnostics()
                    )
                }
            }
        }
    }

    /// Everything printed so far (stdout).
    fn stdout(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        &self.stdout
    }

    /// The demo's temporary directory, from its banner.
    fn work_dir(&mut self) -> PathBuf {
        let line = self
            .stdout()
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("work directory"))
            .map(str::trim)
            .expect("the banner names the work directory");
        let path = line
            .strip_suffix("(removed on exit)")
            .unwrap_or(line)
            .trim();
        PathBuf::from(path)
    }

    fn diagnostics(&mut self) -> String {
        let stdout = self.stdout().join("\n");
        let stderr = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("demo stdout:\n{stdout}\ndemo stderr:\n{stderr}")
    }

    /// SIGTERM, then the exit status within [`EXIT_WITHIN`].
    fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + EXIT_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the demo") {
                // Let the reader thread deliver the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the demo did not exit within {EXIT_WITHIN:?} of SIGTERM; {}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs kubectl against the demo; its stdout, or its stderr as the error.
    fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl(args)
            .unwrap_or_else(|stderr| panic!("kubectl {args:?} failed: {stderr}"))
    }

    fn raw(&self, path: &str) -> Value {
        let text = self.kubectl_ok(&["get", "--raw", path]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("metrics-server-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// The truth
// ---------------------------------------------------------------------------------------

/// True usage of one node, pod or container.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_nanocores: u64,
    memory_bytes: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.cpu_nanocores += other.cpu_nanocores;
        self.memory_bytes += other.memory_bytes;
    }
}

/// The demo's cluster as the generator defines it (same seed and size; memory held
/// steady, as the demo does). The demo's epoch is its start time, which changes no rate
/// or size.
struct Truth {
    nodes: BTreeMap<String, Usage>,
    node_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// (namespace, name) to containers by name.
    pods: BTreeMap<(String, String), BTreeMap<String, Usage>>,
    pod_labels: BTreeMap<(String, String), BTreeMap<String, String>>,
}

impl Truth {
    fn new() -> Truth {
        let mut cluster = Cluster::new(&ClusterSpec::new(SEED, NODES, PODS_PER_NODE));
        cluster.set_steady_memory(true);
        let at = ClusterSpec::DEFAULT_EPOCH;
        let mut truth = Truth {
            nodes: BTreeMap::new(),
            node_labels: BTreeMap::new(),
            pods: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
        };
        for (n, node) in cluster.nodes().iter().enumerate() {
            let usage = Usage {
                cpu_nanocores: cluster.true_node_cpu_nanocores(n),
                memory_bytes: cluster.true_node_memory_bytes(n, at),
            };
            truth.nodes.insert(node.name.clone(), usage);
            truth
                .node_labels
                .insert(node.name.clone(), node.labels.iter().cloned().collect());
            for (p, pod) in node.pods().iter().enumerate() {
                let key = (pod.namespace.clone(), pod.name.clone());
                let containers = pod
                    .containers()
                    .iter()
                    .enumerate()
                    .map(|(c, container)| {
                        let usage = Usage {
                            cpu_nanocores: cluster.true_cpu_nanocores(n, p, c),
                            memory_bytes: cluster.true_memory_bytes(n, p, c, at),
                        };
                        (container.name.clone(), usage)
                    })
                    .collect();
                truth.pods.insert(key.clone(), containers);
                truth
                    .pod_labels
                    .insert(key, pod.labels.iter().cloned().collect());
            }
        }
        assert_eq!(truth.pods.len(), NODES * PODS_PER_NODE);
        truth
    }

    fn node(&self, name: &str) -> Usage {
        *self
            .nodes
            .get(name)
            .unwrap_or_else(|| panic!("unknown node {name}"))
    }

    /// A pod's usage as the metrics API defines it: the sum of its containers.
    fn pod(&self, namespace: &str, name: &str) -> Usage {
        let mut sum = Usage::default();
        for usage in self.containers(namespace, name).values() {
            sum += *usage;
        }
        sum
    }

    fn containers(&self, namespace: &str, name: &str) -> &BTreeMap<String, Usage> {
        self.pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("unknown pod {namespace}/{name}"))
    }

    /// The pod with the most containers (for `--containers`).
    fn busiest_pod(&self) -> (String, String) {
        self.pods
            .iter()
            .max_by_key(|(_, containers)| containers.len())
            .map(|(key, _)| key.clone())
            .expect("pods exist")
    }
}

/// CPU from the API (nanocores) within 5% of the truth.
fn assert_cpu(what: &str, nanocores: f64, truth: u64) {
    let truth = truth as f64;
    assert!(
        (nanocores - truth).abs() <= truth * 0.05,
        "{what}: CPU {nanocores}n, truth {truth}n"
    );
}

/// CPU as kubectl prints it (whole millicores, rounded up) within 5% of the truth, or
/// within the 1m resolution of the display for tiny values.
fn assert_cpu_millis(what: &str, shown: &str, truth: u64) {
    let millis: f64 = shown
        .strip_suffix('m')
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{what}: CPU {shown:?} is not in millicores"));
    let truth_millis = truth as f64 / 1e6;
    let tolerance = (truth_millis * 0.05).max(1.0);
    assert!(
        (millis - truth_millis).abs() <= tolerance,
        "{what}: CPU {shown}, truth {truth_millis:.3}m"
    );
}

/// Memory as kubectl prints it: whole MiB, truncated.
fn assert_memory_mib(what: &str, shown: &str, truth: u64) {
    assert_eq!(
        shown,
        format!("{}Mi", truth / MIB),
        "{what}: memory {shown}, truth {truth} bytes"
    );
}

/// A Kubernetes quantity in nano-units (exact for what the API prints).
fn quantity_nanos(q: &str) -> i128 {
    let suffixes: [(&str, i128); 10] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("n", 0),
        ("u", 0),
        ("m", 0),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("", 1),
    ];
    for (suffix, multiplier) in suffixes {
        let Some(number) = q.strip_suffix(suffix) else {
            continue;
        };
        let Ok(n) = number.parse::<i128>() else {
            continue;
        };
        return match suffix {
            "n" => n,
            "u" => n * 1_000,
            "m" => n * 1_000_000,
            _ => n * multiplier * 1_000_000_000,
        };
    }
    panic!("unexpected quantity {q:?}")
}

fn usage_of(item: &Value) -> (f64, u64) {
    let usage = &item["usage"];
    let cpu = usage["cpu"].as_str().expect("cpu quantity");
    let memory = usage["memory"].as_str().expect("memory quantity");
    // Nano-units of cores are nanocores.
    let cpu = quantity_nanos(cpu) as f64;
    let memory = u64::try_from(quantity_nanos(memory) / 1_000_000_000).expect("whole bytes");
    (cpu, memory)
}

fn items(list: &Value, kind: &str) -> Vec<Value> {
    assert_eq!(list["kind"], kind, "{list}");
    list["items"].as_array().expect("items").clone()
}

fn name_of(item: &Value) -> (String, String) {
    let meta = &item["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_owned(),
        meta["name"].as_str().expect("a name").to_owned(),
    )
}

/// Rows of a kubectl table, by its header's columns.
fn table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells.len(), header.len(), "row {line:?} under {header:?}");
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| ((*h).to_owned(), c.to_owned()))
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

fn check_top_nodes(demo: &Demo, truth: &Truth) {
    let rows = table(&demo.kubectl_ok(&["top", "nodes"]));
    let names: BTreeSet<&str> = rows.iter().map(|r| r["NAME"].as_str()).collect();
    let expected: BTreeSet<&str> = truth.nodes.keys().map(String::as_str).collect();
    assert_eq!(names, expected, "kubectl top nodes");
    for row in &rows {
        let name = &row["NAME"];
        let usage = truth.node(name);
        assert_cpu_millis(name, &row["CPU(cores)"], usage.cpu_nanocores);
        assert_memory_mib(name, &row["MEMORY(bytes)"], usage.memory_bytes);
        // The nodes' allocatable is served, so the percentages are shown.
        for column in ["CPU(%)", "MEMORY(%)"] {
            let percent = row[column].strip_suffix('%').map(str::parse::<u32>);
            assert!(
                matches!(percent, Some(Ok(p)) if p <= 100),
                "{name} {column}: {row:?}"
            );
        }
    }
}

fn check_top_pods(demo: &Demo, truth: &Truth) {
    let rows = table(&demo.kubectl_ok(&["top", "pods", "-A"]));
    let names: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r["NAMESPACE"].clone(), r["NAME"].clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = truth.pods.keys().cloned().collect();
    assert_eq!(names, expected, "kubectl top pods -A");
    for row in &rows {
        let (ns, name) = (&row["NAMESPACE"], &row["NAME"]);
        let usage = truth.pod(ns, name);
        let what = format!("{ns}/{name}");
        assert_cpu_millis(&what, &row["CPU(cores)"], usage.cpu_nanocores);
        assert_memory_mib(&what, &row["MEMORY(bytes)"], usage.memory_bytes);
    }
}

fn check_top_pod_containers(demo: &Demo, truth: &Truth) {
    let (ns, pod) = truth.busiest_pod();
    let rows = table(&demo.kubectl_ok(&["top", "pod", &pod, "-n", &ns, "--containers"]));
    let containers = truth.containers(&ns, &pod);
    assert!(containers.len() > 1, "a pod with several containers");
    let names: BTreeSet<&str> = rows.iter().map(|r| r["NAME"].as_str()).collect();
    let expected: BTreeSet<&str> = containers.keys().map(String::as_str).collect();
    assert_eq!(names, expected, "kubectl top pod {pod} --containers");
    for row in &rows {
        assert_eq!(row["POD"], pod);
        let usage = containers[&row["NAME"]];
        let what = format!("{ns}/{pod}/{}", row["NAME"]);
        assert_cpu_millis(&what, &row["CPU(cores)"], usage.cpu_nanocores);
        assert_memory_mib(&what, &row["MEMORY(bytes)"], usage.memory_bytes);
    }
}

fn check_node_item(item: &Value, truth: &Truth) -> String {
    let (_, name) = name_of(item);
    let usage = truth.node(&name);
    let (cpu, memory) = usage_of(item);
    assert_cpu(&name, cpu, usage.cpu_nanocores);
    assert_eq!(memory, usage.memory_bytes, "{name}: memory");
    assert!(
        item["window"].as_str().is_some_and(|w| w.ends_with('s')),
        "{item}"
    );
    name
}

fn check_pod_item(item: &Value, truth: &Truth) -> (String, String) {
    let (ns, name) = name_of(item);
    let containers = truth.containers(&ns, &name);
    let listed = item["containers"].as_array().expect("containers");
    assert_eq!(listed.len(), containers.len(), "{ns}/{name}: containers");
    for container in listed {
        let cname = container["name"].as_str().expect("a container name");
        let usage = containers
            .get(cname)
            .unwrap_or_else(|| panic!("{ns}/{name}: unknown container {cname}"));
        let (cpu, memory) = usage_of(container);
        let what = format!("{ns}/{name}/{cname}");
        assert_cpu(&what, cpu, usage.cpu_nanocores);
        assert_eq!(memory, usage.memory_bytes, "{what}: memory");
    }
    (ns, name)
}

/// Straight to the metrics server, past the fake aggregator, with bearer tokens: each
/// is reviewed (TokenReview) and its user authorized (SubjectAccessReview) by the fake
/// apiserver. kubectl's user may read metrics; the server's own service account is
/// authenticated but not allowed; an unknown token is 401. (kubectl cannot be made to
/// send no credentials at all without prompting; the anonymous case is in core's tests.)
fn check_direct_access(demo: &mut Demo) {
    let server = demo
        .stdout()
        .iter()
        .filter_map(|l| l.trim().strip_prefix("metrics-server").map(str::trim))
        .find(|rest| rest.starts_with("https://"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .expect("the demo prints the metrics server's address");
    let token_in = |path: &Path| {
        let text = std::fs::read_to_string(path).expect("kubeconfig");
        text.lines()
            .find_map(|l| l.trim().strip_prefix("token:"))
            .map(|t| t.trim().trim_matches('"').to_owned())
            .expect("a token")
    };
    let viewer = token_in(&demo.kubeconfig);
    let service_account = token_in(&demo.work_dir().join("metrics-server.kubeconfig"));
    let direct = |token: &str| {
        let out = Command::new("kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &server])
            .arg("--insecure-skip-tls-verify")
            .args(["--token", token, "--request-timeout", "20s"])
            .args(["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"])
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs");
        let text = if out.status.success() {
            out.stdout
        } else {
            out.stderr
        };
        (
            out.status.success(),
            String::from_utf8_lossy(&text).into_owned(),
        )
    };
    let (ok, text) = direct(&viewer);
    assert!(ok, "the demo user's token must be accepted: {text}");
    let list = serde_json::from_str(&text).expect("JSON");
    assert_eq!(items(&list, "NodeMetricsList").len(), NODES);
    let (ok, text) = direct(&service_account);
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            r#"User "system:serviceaccount:kube-system:metrics-server" cannot list resource "nodes""#
        ),
        "{text}"
    );
    let (ok, text) = direct("not-a-token");
    assert!(!ok && text.contains("Unauthorized"), "{text}");
}

fn check_raw_nodes(demo: &Demo, truth: &Truth) {
    const NODES_PATH: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
    // List.
    let list = demo.raw(NODES_PATH);
    let names: BTreeSet<String> = items(&list, "NodeMetricsList")
        .iter()
        .map(|item| check_node_item(item, truth))
        .collect();
    assert_eq!(names, truth.nodes.keys().cloned().collect());

    // Get.
    let name = truth.nodes.keys().nth(1).expect("a second node");
    let one = demo.raw(&format!("{NODES_PATH}/{name}"));
    assert_eq!(one["kind"], "NodeMetrics");
    assert_eq!(&check_node_item(&one, truth), name);

    // Label selector.
    let zone = &truth.node_labels[name]["topology.kubernetes.io/zone"];
    let selected = demo.raw(&format!(
        "{NODES_PATH}?labelSelector=topology.kubernetes.io%2Fzone%3D{zone}"
    ));
    let names: BTreeSet<String> = items(&selected, "NodeMetricsList")
        .iter()
        .map(|item| check_node_item(item, truth))
        .collect();
    let expected: BTreeSet<String> = truth
        .node_labels
        .iter()
        .filter(|(_, labels)| labels.get("topology.kubernetes.io/zone") == Some(zone))
        .map(|(n, _)| n.clone())
        .collect();
    assert!(!expected.is_empty() && expected.len() < NODES);
    assert_eq!(names, expected, "nodes in {zone}");

    // Not found.
    let err = demo
        .kubectl(&["get", "--raw", &format!("{NODES_PATH}/no-such-node")])
        .expect_err("an unknown node is an error");
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

fn check_raw_pods(demo: &Demo, truth: &Truth) {
    // Every pod, with each container's usage.
    let list = demo.raw("/apis/metrics.k8s.io/v1beta1/pods");
    let names: BTreeSet<(String, String)> = items(&list, "PodMetricsList")
        .iter()
        .map(|item| check_pod_item(item, truth))
        .collect();
    assert_eq!(names, truth.pods.keys().cloned().collect());

    let (ns, pod) = truth.busiest_pod();
    let base = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods");

    // One namespace.
    let in_ns = demo.raw(&base);
    let names: BTreeSet<(String, String)> = items(&in_ns, "PodMetricsList")
        .iter()
        .map(|item| check_pod_item(item, truth))
        .collect();
    let expected: BTreeSet<(String, String)> = truth
        .pods
        .keys()
        .filter(|(n, _)| *n == ns)
        .cloned()
        .collect();
    assert_eq!(names, expected, "pods in {ns}");

    // Label selector within the namespace.
    let app = &truth.pod_labels[&(ns.clone(), pod.clone())]["app"];
    let selected = demo.raw(&format!("{base}?labelSelector=app%3D{app}"));
    let names: BTreeSet<(String, String)> = items(&selected, "PodMetricsList")
        .iter()
        .map(|item| check_pod_item(item, truth))
        .collect();
    let expected: BTreeSet<(String, String)> = truth
        .pod_labels
        .iter()
        .filter(|((n, _), labels)| *n == ns && labels.get("app") == Some(app))
        .map(|(key, _)| key.clone())
        .collect();
    assert!(expected.contains(&(ns.clone(), pod.clone())));
    assert_eq!(names, expected, "pods in {ns} with app={app}");

    // Field selector across namespaces.
    let by_field = demo.raw(&format!(
        "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3D{pod}"
    ));
    let names: Vec<(String, String)> = items(&by_field, "PodMetricsList")
        .iter()
        .map(|item| check_pod_item(item, truth))
        .collect();
    assert_eq!(names, [(ns.clone(), pod.clone())]);

    // Get.
    let one = demo.raw(&format!("{base}/{pod}"));
    assert_eq!(one["kind"], "PodMetrics");
    assert_eq!(check_pod_item(&one, truth), (ns, pod));
}

fn check_get_node_metrics(demo: &Demo, truth: &Truth) {
    let rows = table(&demo.kubectl_ok(&["get", "nodes.metrics.k8s.io"]));
    let names: BTreeSet<&str> = rows.iter().map(|r| r["NAME"].as_str()).collect();
    let expected: BTreeSet<&str> = truth.nodes.keys().map(String::as_str).collect();
    assert_eq!(names, expected, "kubectl get nodes.metrics.k8s.io");
    // The server's table has the usage itself.
    for row in &rows {
        let usage = truth.node(&row["NAME"]);
        let cpu = quantity_nanos(&row["CPU"]) as f64;
        assert_cpu(&row["NAME"], cpu, usage.cpu_nanocores);
        let memory = quantity_nanos(&row["MEMORY"]) / 1_000_000_000;
        assert_eq!(
            memory,
            i128::from(usage.memory_bytes),
            "{}: memory",
            row["NAME"]
        );
    }
}
