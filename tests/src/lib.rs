//! The end-to-end harness: starts a real `strata serve` process on free loopback ports with a
//! temporary data directory, waits until it is ready, runs real clients against it (kcat, the
//! Python clients in the project's virtualenv, kafkajs under node), and always cleans up — the
//! process is killed when the handle drops, even when a test panics.
//!
//! Required tools: a test that needs a client calls [`require`]; when the tool is missing the
//! test fails if `STRATA_TEST_REQUIRE_ALL=1` (the README test command sets it) and otherwise is
//! reported loudly as skipped.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod s3;

/// The repository root (the workspace holding this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `strata` binary the tests run: `STRATA_BIN` if set, else the workspace build of the
/// same profile as the tests, built on first use.
pub fn strata_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("STRATA_BIN") {
            return PathBuf::from(path);
        }
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let target_dir = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("target"));
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.current_dir(repo_root()).args([
            "build",
            "-q",
            "-p",
            "strata-broker",
            "--bin",
            "strata",
        ]);
        if profile == "release" {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("running cargo build for the strata binary");
        assert!(status.success(), "cargo build of the strata binary failed");
        target_dir.join(profile).join("strata")
    })
    .clone()
}

/// A free TCP port on 127.0.0.1, drawn at random from below the kernel's ephemeral range.
///
/// A port the kernel hands out for `bind(0)` is also one it hands out as the local port of an
/// outgoing connection, and the tests open thousands of those: one could take the port between
/// this check and the server's bind, and the server would fail to start. Ports below the range
/// are never given to outgoing connections; parallel test processes draw at random, so two
/// rarely pick the same one, and [`StrataBuilder::start`] draws again if that happens.
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low: u16 = 10_000;
    if ephemeral_start > low + 1000 {
        for _ in 0..1000 {
            let port = low + (random_u64() % u64::from(ephemeral_start - low)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// A random number: std's per-process random hash keys over a counter and the clock.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(DRAWS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// Whether a failed start-up was a listener bind that lost a race for its port.
pub fn lost_port_race(logs: &str) -> bool {
    logs.contains("Address already in use") || logs.contains("AddrInUse")
}

/// Whether missing tools fail the test (the README test command) or skip it (a quick local run).
pub fn require_all() -> bool {
    matches!(
        std::env::var("STRATA_TEST_REQUIRE_ALL").as_deref(),
        Ok("1") | Ok("true")
    ) || matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Returns true when `tool` is available. When it is not: panics under [`require_all`], else
/// prints a loud SKIPPED line and returns false so the caller can return early.
pub fn require(tool: Tool) -> bool {
    let available = match tool {
        Tool::Kcat => which("kcat"),
        Tool::Python => venv_python().exists(),
        Tool::Node => which("node") && repo_root().join("tests/js/node_modules/kafkajs").exists(),
        Tool::Strace => which("strace"),
    };
    if available {
        return true;
    }
    let message = format!(
        "{tool:?} is not installed; run scripts/install-test-deps.sh (or the README test command)"
    );
    if require_all() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    false
}

#[derive(Debug, Clone, Copy)]
pub enum Tool {
    Kcat,
    Python,
    Node,
    /// strace, to see which files the broker fsyncs.
    Strace,
}

fn which(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The project's virtualenv Python (confluent-kafka, kafka-python, moto, pyarrow, duckdb).
pub fn venv_python() -> PathBuf {
    repo_root().join(".venv/bin/python")
}

/// Runs a client script from `tests/clients/` with the virtualenv's Python.
pub fn python(script: &str, args: &[&str]) -> Output {
    let path = repo_root().join("tests/clients").join(script);
    run_with_timeout(
        Command::new(venv_python()).arg(path).args(args),
        Duration::from_secs(180),
    )
}

/// Creates a one-partition tiered topic through the Python admin client: `segment.bytes` as
/// given, nothing kept locally but the active segment (`local.retention.bytes=1`), remote
/// history kept forever, so the remote tier soon holds most of the topic.
pub fn create_tiered_topic(strata: &Strata, topic: &str, segment_bytes: u32) {
    let segment = format!("segment.bytes={segment_bytes}");
    let out = python(
        "tiering_client.py",
        &[
            "create",
            &strata.kafka_addr(),
            topic,
            "remote.storage.enable=true",
            &segment,
            "local.retention.bytes=1",
            "retention.ms=-1",
        ],
    );
    assert_success(&out, &format!("creating tiered topic {topic}"));
}

/// Runs a kafkajs script from `tests/js/` with node.
pub fn node(script: &str, args: &[&str]) -> Output {
    let path = repo_root().join("tests/js").join(script);
    run_with_timeout(
        Command::new("node")
            .current_dir(repo_root().join("tests/js"))
            .arg(path)
            .args(args),
        Duration::from_secs(180),
    )
}

/// Runs kcat with `args`, feeding `stdin`.
pub fn kcat(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kcat");
    let mut input = child.stdin.take().expect("kcat stdin");
    input.write_all(stdin).expect("writing to kcat");
    drop(input);
    wait_output(child, Duration::from_secs(120), "kcat")
}

/// Runs a command to completion, killing it after `limit`; output is captured.
pub fn run_with_timeout(command: &mut Command, limit: Duration) -> Output {
    let description = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {description}: {e}"));
    wait_output(child, limit, &description)
}

fn wait_output(mut child: Child, limit: Duration, what: &str) -> Output {
    // Drain pipes on threads so a chatty child never blocks on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran for more than {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default(),
        stderr: stderr
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default(),
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Asserts a client exited 0, showing its output otherwise; returns its stdout as text.
pub fn assert_success(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

/// How to start a broker: extra flags, broker configs, environment.
#[derive(Debug, Default, Clone)]
pub struct StrataBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
}

impl StrataBuilder {
    /// A Kafka broker config, passed as `--set key=value`.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.args.push("--set".into());
        self.args.push(format!("{key}={value}"));
        self
    }

    /// Any other `strata serve` flag.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Use this data directory instead of a fresh temporary one (e.g. to share a bucket).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn start(self) -> Strata {
        let temp = tempfile::Builder::new()
            .prefix("strata-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.path().join("data"));
        let mut strata = Strata {
            child: None,
            kafka_port: free_port(),
            http_port: free_port(),
            data_dir,
            log_path: temp.path().join("strata.log"),
            builder: self,
            _temp: temp,
        };
        // A clash over a port (see free_port) is retried on new ports; only the first start
        // may move, since a test keeps its broker's addresses across restarts.
        for _ in 0..5 {
            match strata.try_spawn() {
                Ok(()) => return strata,
                Err(StartFailure::Exited(_)) if lost_port_race(&strata.logs()) => {
                    strata.kafka_port = free_port();
                    strata.http_port = free_port();
                }
                Err(failure) => strata.fail_start(failure),
            }
        }
        panic!(
            "strata lost the race for its ports five times\n{}",
            strata.logs()
        );
    }
}

/// Why a broker did not come up.
enum StartFailure {
    Exited(ExitStatus),
    NotReady(Duration),
}

/// A running `strata serve` process, killed when dropped.
pub struct Strata {
    child: Option<Child>,
    kafka_port: u16,
    http_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    builder: StrataBuilder,
    _temp: tempfile::TempDir,
}

impl Strata {
    /// A broker with default settings on free ports and a fresh data directory.
    pub fn start() -> Self {
        Self::builder().start()
    }

    pub fn builder() -> StrataBuilder {
        StrataBuilder::default()
    }

    /// `127.0.0.1:PORT` of the Kafka listener: a bootstrap server for clients.
    pub fn kafka_addr(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// `http://127.0.0.1:PORT` of the HTTP listener.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `GET /metrics`: the Prometheus exposition text.
    pub fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.http_url());
        reqwest::blocking::get(&url)
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// Everything the broker logged (stderr and stdout) across all its runs.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn try_spawn(&mut self) -> Result<(), StartFailure> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("opening the broker log");
        let mut command = Command::new(strata_bin());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--kafka-listen")
            .arg(self.kafka_addr())
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .args(&self.builder.args)
            .env(
                "RUST_LOG",
                std::env::var("STRATA_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log);
        for (key, value) in &self.builder.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().expect("starting strata"));
        self.wait_ready(Duration::from_secs(60))
    }

    fn spawn(&mut self) {
        if let Err(failure) = self.try_spawn() {
            self.fail_start(failure);
        }
    }

    fn fail_start(&self, failure: StartFailure) -> ! {
        match failure {
            StartFailure::Exited(status) => {
                panic!(
                    "strata exited during start-up with {status}\n{}",
                    self.logs()
                )
            }
            StartFailure::NotReady(limit) => {
                panic!("strata was not ready after {limit:?}\n{}", self.logs())
            }
        }
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), StartFailure> {
        let deadline = Instant::now() + limit;
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("building an HTTP client");
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(StartFailure::Exited(status));
            }
            let healthy = client
                .get(format!("{}/healthz", self.http_url()))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if healthy && std::net::TcpStream::connect(self.kafka_addr()).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartFailure::NotReady(limit));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs, as in a crash or power cut of the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("strata is not running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("polling strata") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("strata did not stop within 30s of SIGTERM\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again with the same ports, data directory and settings.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` every 200 ms until it holds; fails the test naming `what` after `limit`.
/// The value of the sample `name` (with its labels, e.g. `m{topic="t",partition="0"}`) in a
/// Prometheus exposition; panics, showing the exposition, when it has no such sample.
pub fn metric_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {exposition}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
