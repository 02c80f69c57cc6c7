//! `strata serve` as a user starts it: readiness, health, metrics, configuration errors, clean
//! shutdown, and the MinIO compose file's command line.

use std::process::Command;
use std::time::Duration;

use strata_tests::{
    Strata, Tool, assert_success, repo_root, require, run_with_timeout, strata_bin,
};

fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.text().expect("reading the body"),
    )
}

#[test]
fn serves_health_and_prometheus_metrics_then_stops_cleanly_on_sigterm() {
    let mut strata = Strata::start();

    let (status, _, body) = get(&format!("{}/healthz", strata.http_url()));
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("healthz is JSON");
    assert_eq!(health["status"], "ok");

    let (status, content_type, body) = get(&format!("{}/metrics", strata.http_url()));
    assert_eq!(status, 200);
    assert!(content_type.contains("text"), "content-type {content_type}");
    assert!(
        body.lines().any(|l| l == "strata_up 1"),
        "no `strata_up 1` line in:\n{body}"
    );
    assert!(body.contains("# TYPE strata_up gauge"), "{body}");
    // HTTP routes are counted by template, method and status (the /healthz above, and the
    // start-up readiness polls).
    let healthz = strata_tests::metric_value(
        &body,
        "strata_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}",
    );
    assert!(healthz >= 1.0, "{body}");
    let (status, _, _) = get(&format!("{}/v1/claims/not-a-claim-id", strata.http_url()));
    assert!(status >= 400, "{status}");
    let (_, _, body) = get(&format!("{}/metrics", strata.http_url()));
    assert!(
        body.contains(&format!(
            "strata_http_requests_total{{route=\"/v1/claims/{{id}}\",method=\"GET\",status=\"{status}\"}} 1"
        )),
        "{body}"
    );

    let status = strata.stop();
    assert!(status.success(), "exit status {status}\n{}", strata.logs());
    assert!(
        strata.logs().contains("stopped cleanly"),
        "{}",
        strata.logs()
    );
}

#[test]
fn a_bad_config_value_is_rejected_at_start_naming_the_key() {
    let data = tempfile::tempdir().unwrap();
    let output = run_with_timeout(
        Command::new(strata_bin())
            .args(["serve", "--data-dir"])
            .arg(data.path().join("data"))
            .args(["--set", "log.segment.bytes=lots"]),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`log.segment.bytes`") && stderr.contains("not an integer"),
        "{stderr}"
    );

    let config = data.path().join("strata.toml");
    std::fs::write(&config, "[broker]\n\"log.retention.mss\" = 5\n").unwrap();
    let output = run_with_timeout(
        Command::new(strata_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(data.path().join("data")),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown config key `log.retention.mss`"),
        "{stderr}"
    );
    assert!(
        !data.path().join("data").exists(),
        "nothing is created on a bad start"
    );
}

#[test]
fn print_config_shows_the_effective_configuration_with_env_and_flag_precedence() {
    let output = run_with_timeout(
        Command::new(strata_bin())
            .args([
                "serve",
                "--print-config",
                "--kafka-listen",
                "127.0.0.1:19999",
            ])
            .env("STRATA_KAFKA_LISTEN", "127.0.0.1:18888")
            .env("STRATA_HTTP_LISTEN", "127.0.0.1:18080")
            .env("STRATA_SET", "log.retention.ms=1234,num.partitions=3"),
        Duration::from_secs(30),
    );
    let text = assert_success(&output, "strata serve --print-config");
    let printed: toml::Table = toml::from_str(&text).expect("--print-config prints TOML");
    assert_eq!(
        printed["kafka_listen"].as_str(),
        Some("127.0.0.1:19999"),
        "flag beats env"
    );
    assert_eq!(
        printed["http_listen"].as_str(),
        Some("127.0.0.1:18080"),
        "env beats default"
    );
    let broker = printed["broker"].as_table().unwrap();
    assert_eq!(broker["log.retention.ms"].as_integer(), Some(1234));
    assert_eq!(broker["num.partitions"].as_integer(), Some(3));
    assert_eq!(broker["log.segment.bytes"].as_integer(), Some(1073741824));
}

#[test]
fn help_documents_every_serve_flag() {
    let output = run_with_timeout(
        Command::new(strata_bin()).args(["serve", "--help"]),
        Duration::from_secs(30),
    );
    let help = assert_success(&output, "strata serve --help");
    for flag in [
        "--config",
        "--data-dir",
        "--kafka-listen",
        "--http-listen",
        "--remote",
        "--set",
        "--print-config",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

/// Docker cannot run here, so the compose file is checked the way it can be: its services exist
/// and the strata command line it uses is accepted by this build of strata.
#[test]
fn minio_compose_wires_strata_to_minio_with_flags_strata_accepts() {
    if !require(Tool::Python) {
        return;
    }
    let compose = repo_root().join("minio-compose.yml");
    let script = r#"
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
print(json.dumps(doc))
"#;
    let output = run_with_timeout(
        Command::new(strata_tests::venv_python())
            .args(["-c", script])
            .arg(&compose),
        Duration::from_secs(30),
    );
    let parsed: serde_json::Value =
        serde_json::from_str(&assert_success(&output, "parsing minio-compose.yml")).unwrap();
    let services = parsed["services"].as_object().expect("services");
    for name in ["minio", "create-bucket", "strata"] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    let strata = &services["strata"];
    let args: Vec<String> = strata["command"]
        .as_array()
        .expect("strata command is a list")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "serve");
    let remote_at = args.iter().position(|a| a == "--remote").expect("--remote");
    assert!(args[remote_at + 1].starts_with("s3://"));
    let env = strata["environment"].as_object().expect("environment");
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://minio:9000");

    let mut command = Command::new(strata_bin());
    command.args(&args).arg("--print-config");
    for (key, value) in env {
        command.env(key, value.as_str().unwrap());
    }
    let output = run_with_timeout(&mut command, Duration::from_secs(30));
    let printed = assert_success(&output, "the compose file's strata command line");
    assert!(
        printed.contains("remote = \"s3://strata/cluster\""),
        "{printed}"
    );
    assert!(
        printed.contains("\"advertised.listeners\" = \"localhost:9092\""),
        "{printed}"
    );
}

/// A SIGTERM that arrives while the broker is still starting (its Kafka port is bound first,
/// before the log opens) is kept: start-up completes and the broker stops cleanly, writing its
/// clean-shutdown checkpoint, instead of dying from the signal's default action.
#[test]
fn a_sigterm_during_start_up_stops_the_broker_cleanly() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut child = None;
    for _ in 0..5 {
        let kafka = format!("127.0.0.1:{}", strata_tests::free_port());
        let http = format!("127.0.0.1:{}", strata_tests::free_port());
        let mut started = Command::new(strata_bin())
            .args(["serve", "--data-dir"])
            .arg(&data_dir)
            .args(["--kafka-listen", &kafka, "--http-listen", &http])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&kafka).is_err() {
            if let Some(status) = started.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(started.stderr.as_mut().unwrap(), &mut stderr)
                    .unwrap();
                // Another process took a port between free_port and the bind: draw again.
                assert!(
                    strata_tests::lost_port_race(&stderr),
                    "strata exited during start-up with {status}\n{stderr}"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the Kafka port never opened"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        if started.try_wait().unwrap().is_none() {
            child = Some(started);
            break;
        }
    }
    let mut child = child.expect("strata lost the race for its ports five times");
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = run_until_exit(&mut child, Duration::from_secs(30));
    assert!(output.0.success(), "exited with {}\n{}", output.0, output.1);
    assert!(output.1.contains("stopped cleanly"), "{}", output.1);
    assert!(
        data_dir.join(".clean_shutdown").exists(),
        "no clean-shutdown checkpoint in {}",
        data_dir.display()
    );
}

/// Port 0 asks for any free port, as Kafka's `listeners=PLAINTEXT://:0` does: the ready line
/// names the ports actually bound, and clients are told the real Kafka port (not 0) in metadata.
#[test]
fn listening_on_port_zero_reports_and_advertises_the_bound_ports() {
    if !require(Tool::Kcat) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let log_path = temp.path().join("strata.log");
    let mut child = KillOnDrop(
        Command::new(strata_bin())
            .args(["serve", "--data-dir"])
            .arg(temp.path().join("data"))
            .args([
                "--kafka-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut ready_line = String::new();
    strata_tests::wait_until("the strata ready line", Duration::from_secs(60), || {
        assert!(child.0.try_wait().unwrap().is_none(), "strata exited");
        let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
        match logs.lines().find(|line| line.contains("strata ready")) {
            Some(line) => {
                ready_line = line.to_string();
                true
            }
            None => false,
        }
    });
    let field = |name: &str| -> String {
        let start = ready_line
            .find(&format!(" {name}="))
            .unwrap_or_else(|| panic!("no {name}= in {ready_line}"))
            + name.len()
            + 2;
        ready_line[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let (kafka, http) = (field("kafka"), field("http"));
    assert!(
        !kafka.ends_with(":0") && !http.ends_with(":0"),
        "{ready_line}"
    );

    let (status, _, _) = get(&format!("http://{http}/healthz"));
    assert_eq!(status, 200);
    let metadata = strata_tests::kcat(&["-b", &kafka, "-L"], b"");
    let metadata = assert_success(&metadata, "kcat -L");
    assert!(
        metadata.contains(&format!("at {kafka}")),
        "metadata does not advertise {kafka}:\n{metadata}"
    );
}

/// A child process killed when the test ends, even by a panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit (killing it after `limit`); its status and stderr.
fn run_until_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}
