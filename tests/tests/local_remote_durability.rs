//! The local-directory remote tier (the default) is as durable as an S3 PUT: every object the
//! broker stores there (segment objects, indexes, manifests, claim payloads and their metadata)
//! is fsynced, with its directory, before the write counts as done. Local copies of segments are
//! deleted once their upload is in the manifest and claims are acknowledged once their payload is
//! stored, so an object left in the page cache could vanish with a power cut.
//!
//! A power cut cannot be staged here, so the test watches the broker's fsync calls with strace
//! and checks that every file in the bucket directory was fsynced.

#[path = "tiering_support.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata_tests::{Strata, Tool, require};
use support::tiered_topic_with_records;

/// strace attached to a running process (all its threads), killed when dropped.
struct Trace {
    child: Child,
    output: std::path::PathBuf,
}

impl Trace {
    fn attach(pid: u32, output: &Path) -> Self {
        let child = Command::new("strace")
            .args(["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o"])
            .arg(output)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting strace");
        // strace has attached once it has written its output file's first line or a moment
        // has passed; the broker is idle until the test acts, so a short wait is enough.
        std::thread::sleep(Duration::from_secs(2));
        Trace {
            child,
            output: output.to_path_buf(),
        }
    }

    /// Stops tracing; every path passed to fsync or fdatasync.
    fn synced_paths(mut self) -> HashSet<String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let trace = std::fs::read_to_string(&self.output).unwrap_or_default();
        // `1234  fsync(18</path>) = 0`, or with threads interleaved
        // `1234  fsync(18</path> <unfinished ...>` and later `1234  <... fsync resumed>) = 0`.
        trace
            .lines()
            .filter(|line| !line.contains("= -1"))
            .filter_map(|line| {
                let call = line.find("sync(")? + "sync(".len();
                let start = call + line[call..].find('<')? + 1;
                let end = start + line[start..].find('>')?;
                Some(line[start..end].to_string())
            })
            .collect()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn every_object_in_the_local_directory_bucket_is_fsynced_with_its_directory() {
    if !require(Tool::Python) || !require(Tool::Strace) {
        return;
    }
    let strata = Strata::builder()
        .set("log.retention.check.interval.ms", "500")
        .set("remote.log.manager.task.interval.ms", "1000")
        .start();
    let trace_file = tempfile::NamedTempFile::new().unwrap();
    let trace = Trace::attach(strata.pid().unwrap(), trace_file.path());

    let topic = "durable-tier";
    tiered_topic_with_records(&strata, topic, 2000, "d");
    let response = reqwest::blocking::Client::new()
        .post(format!(
            "{}/v1/topics/durable-claims/claims",
            strata.http_url()
        ))
        .body(vec![7u8; 100_000])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);

    let synced = trace.synced_paths();
    let bucket = strata.data_dir().join("remote");
    let objects: Vec<String> = files_under(&bucket)
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap().display().to_string())
        .filter(|p| !p.ends_with(".strata-cas.lock"))
        .collect();
    // What the test must have covered: segment objects, a manifest, a claim payload.
    for kind in ["/segments/", "manifest", "/payload"] {
        assert!(
            objects.iter().any(|o| o.contains(kind)),
            "no {kind} object in {objects:#?}"
        );
    }
    for object in &objects {
        // Objects are written to `<name>#<n>`, fsynced, then renamed into place.
        let staged = format!("{object}#");
        assert!(
            synced.contains(object) || synced.iter().any(|s| s.starts_with(&staged)),
            "{object} was never fsynced"
        );
        let dir = Path::new(object).parent().unwrap().display().to_string();
        assert!(
            synced.contains(&dir),
            "the directory {dir} was never fsynced"
        );
    }
}
