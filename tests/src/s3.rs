//! The S3 server the end-to-end tests use: whatever `STRATA_TEST_S3_ENDPOINT` points at (moto
//! started by the README test command, MinIO, or any S3 endpoint), one bucket
//! (`STRATA_TEST_S3_BUCKET`, created by the test command), and a unique prefix per test so tests
//! never see each other's objects.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Connection details of the S3 server under test.
#[derive(Debug, Clone)]
pub struct S3Target {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Target {
    /// The configured endpoint, or `None` (with a loud SKIPPED line) when there is none and the
    /// run does not require it. Under `STRATA_TEST_REQUIRE_ALL=1` a missing endpoint panics.
    pub fn from_env() -> Option<Self> {
        let Ok(endpoint) = std::env::var("STRATA_TEST_S3_ENDPOINT") else {
            let message = "STRATA_TEST_S3_ENDPOINT is not set: no S3 server to test against \
                           (the README test command starts one)";
            if crate::require_all() {
                panic!("{message}");
            }
            eprintln!("SKIPPED: {message}");
            return None;
        };
        let var = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.into());
        Some(Self {
            endpoint,
            bucket: var("STRATA_TEST_S3_BUCKET", "strata-test"),
            region: var("AWS_REGION", "us-east-1"),
            access_key_id: var("AWS_ACCESS_KEY_ID", "test"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY", "test"),
        })
    }

    /// A `s3://bucket/prefix` URL unique to this call, for one test's remote tier.
    pub fn unique_url(&self, name: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("s3://{}/{name}-{}-{n}", self.bucket, std::process::id())
    }

    /// The environment a `strata` process needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// Runs `tests/clients/s3_objects.py MODE s3://bucket/prefix [ARGS]` against this server
    /// (signed requests through boto3, so MinIO and real S3 work as moto does); its stdout.
    pub fn objects(&self, mode: &str, prefix: &str, args: &[&str]) -> String {
        let mut command = Command::new(crate::venv_python());
        command
            .arg(crate::repo_root().join("tests/clients/s3_objects.py"))
            .arg(mode)
            .arg(format!("s3://{}/{prefix}", self.bucket))
            .args(args);
        for (key, value) in self.env() {
            command.env(key, value);
        }
        let output = crate::run_with_timeout(&mut command, Duration::from_secs(300));
        crate::assert_success(&output, &format!("s3_objects.py {mode} {prefix}"))
    }

    /// Keys under `prefix` in the test bucket.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.objects("list", prefix, &[])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The unfinished multipart uploads under `prefix`: (key, upload id).
    pub fn open_uploads(&self, prefix: &str) -> Vec<(String, String)> {
        self.objects("uploads", prefix, &[])
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(key, id)| (key.to_string(), id.to_string()))
            .collect()
    }

    /// Deletes every object under `prefix` (frees the test server's memory after big objects).
    pub fn delete_all(&self, prefix: &str) {
        self.objects("delete", prefix, &[]);
    }
}
