//! An S3 server that tests can stop and cut off: moto's server mode (from the README test
//! command's virtualenv) and a TCP relay in front of it, for the `tiering_s3_outages` tests
//! (included with `#[path]`; as a test target of its own it holds no tests).
#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_tests::{Tool, free_port, repo_root, require, wait_until};

/// Whether `tools` and moto's S3 server are installed (each missing one says SKIPPED).
pub fn moto_and(tools: &[Tool]) -> bool {
    tools.iter().all(|tool| require(*tool)) && moto_installed()
}

/// Whether the test deps installed moto's S3 server (it says SKIPPED when not).
pub fn moto_installed() -> bool {
    let installed = repo_root().join(".venv/bin/moto_server").exists();
    if !installed {
        eprintln!("SKIPPED: no moto_server in .venv");
    }
    installed
}

/// The broker's AWS_* settings for an S3 server at `endpoint` (moto, plain HTTP).
pub fn s3_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start(port: u16) -> Self {
        let child = Command::new(repo_root().join(".venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let moto = Self { child, port };
        wait_until("moto is up", Duration::from_secs(30), || {
            reqwest::blocking::get(moto.endpoint()).is_ok()
        });
        let put = reqwest::blocking::Client::new()
            .put(format!("{}/tier-faults", moto.endpoint()))
            .send()
            .expect("creating the bucket");
        assert!(put.status().is_success(), "{put:?}");
        moto
    }
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// SIGSTOP: the server hangs (connections accepted, never answered) until [`Moto::unpause`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn unpause(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill {signal} moto");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP relay in front of the S3 server: stopping it is a network outage (connections reset,
/// new ones refused) that leaves the server and its data as they were; starting it again on the
/// same port ends the outage.
pub struct Relay {
    port: u16,
    target: u16,
    running: Option<RelayRun>,
}

/// A running relay: its stop flag, the connections it relays, its accept thread.
pub struct RelayRun {
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accept: std::thread::JoinHandle<()>,
}

impl Relay {
    pub fn start(target: u16) -> Self {
        let mut relay = Self {
            port: free_port(),
            target,
            running: None,
        };
        relay.resume();
        relay
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn resume(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("binding the relay");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (target, stop2, open2) = (self.target, stop.clone(), open.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut open = open2.lock().unwrap();
                open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        self.running = Some(RelayRun { stop, open, accept });
    }

    /// Resets every relayed connection and refuses new ones.
    pub fn cut(&mut self) {
        if let Some(RelayRun { stop, open, accept }) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = accept.join(); // drops the listener: new connections are refused
            for stream in open.lock().unwrap().drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
