//! `strata connect`: a DirectorySource and a DirectorySink round-trip 100 files (one of 1 GiB)
//! byte for byte across a `kill -9` of both runners: no file missing, none duplicated.

#[path = "claims_support.rs"]
mod claims_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use claims_support::{hex, wait_until};
use sha2::{Digest, Sha256};
use strata_tests::{Strata, Tool, require, strata_bin};

const BIG: u64 = 1 << 30;

fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

/// Writes a file of `len` bytes (a repeating 1 MiB pattern stamped per chunk) under a dot-name,
/// then renames it into `dir`, so the source never sees a half-written file.
fn make_file(dir: &Path, name: &str, len: u64, seed: u64) -> String {
    let tmp = dir.join(format!(".{name}.partial"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).unwrap());
    let mut hasher = Sha256::new();
    let mut block: Vec<u8> = (0..1u64 << 20)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 7) as u8)
        .collect();
    let mut written = 0u64;
    let mut chunk = 0u64;
    while written < len {
        block[..8].copy_from_slice(&(chunk ^ seed).to_le_bytes());
        let n = (len - written).min(block.len() as u64) as usize;
        out.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        written += n as u64;
        chunk += 1;
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    hex(&hasher.finalize())
}

fn properties(path: &Path, lines: &[String]) -> PathBuf {
    std::fs::write(path, lines.join("\n")).unwrap();
    path.to_path_buf()
}

fn runner(props: &Path, log: &Path) -> Child {
    Command::new(strata_bin())
        .arg("connect")
        .arg(props)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starting strata connect")
}

fn visible_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn directory_source_and_sink_round_trip_100_files_across_kill_9() {
    let strata = Strata::start();
    let work = tempfile::tempdir().unwrap();
    let (source, done, sink) = (
        work.path().join("source"),
        work.path().join("done"),
        work.path().join("sink"),
    );
    for d in [&source, &done, &sink] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut expected = BTreeMap::new();
    for i in 0..100u64 {
        let name = format!("file-{i:03}.bin");
        let len = if i == 50 { BIG } else { 1000 + i * 7919 };
        expected.insert(name.clone(), make_file(&source, &name, len, i));
    }
    let common = |name: &str| {
        vec![
            format!("name={name}"),
            format!("bootstrap.servers={}", strata.kafka_addr()),
            format!("claimcheck.gateway.url={}", strata.http_url()),
        ]
    };
    let mut src_props = common("files-in");
    src_props.extend([
        "connector.class=DirectorySource".to_string(),
        "topic=files".to_string(),
        format!("source.dir={}", source.display()),
        format!("done.dir={}", done.display()),
        "poll.interval.ms=100".to_string(),
    ]);
    let mut sink_props = common("files-out");
    sink_props.extend([
        "connector.class=DirectorySink".to_string(),
        "topics=files".to_string(),
        format!("sink.dir={}", sink.display()),
        "poll.interval.ms=100".to_string(),
        // A transform on the sink side: tag, then drop the tag again (exercises the chain).
        "transforms=tag,untag".to_string(),
        "transforms.tag.type=InsertHeader".to_string(),
        "transforms.tag.header=x-sink".to_string(),
        "transforms.tag.value.literal=1".to_string(),
        "transforms.untag.type=DropHeaders".to_string(),
        "transforms.untag.headers=x-sink".to_string(),
    ]);
    let src_props = properties(&work.path().join("source.properties"), &src_props);
    let sink_props = properties(&work.path().join("sink.properties"), &sink_props);
    let src_log = work.path().join("source.log");
    let sink_log = work.path().join("sink.log");

    let mut src = runner(&src_props, &src_log);
    let mut snk = runner(&sink_props, &sink_log);
    // Kill both while the 1 GiB file is on its way (files 0..49 are done by then).
    wait_until(
        "the source to send 50 files",
        Duration::from_secs(300),
        || visible_files(&done).len() >= 50,
    );
    std::thread::sleep(Duration::from_millis(1500));
    src.kill().unwrap(); // SIGKILL
    snk.kill().unwrap();
    src.wait().unwrap();
    snk.wait().unwrap();
    let at_kill = (visible_files(&done).len(), visible_files(&sink).len());

    let mut src = runner(&src_props, &src_log.with_extension("2.log"));
    let mut snk = runner(&sink_props, &sink_log.with_extension("2.log"));
    let logs = || {
        format!(
            "killed at {at_kill:?}\nsource: {}\nsink: {}",
            std::fs::read_to_string(src_log.with_extension("2.log")).unwrap_or_default(),
            std::fs::read_to_string(sink_log.with_extension("2.log")).unwrap_or_default()
        )
    };
    wait_until(
        "all 100 files to reach the sink",
        Duration::from_secs(900),
        || visible_files(&done).len() == 100 && visible_files(&sink).len() >= 100,
    );
    std::thread::sleep(Duration::from_millis(1000));
    src.kill().unwrap();
    snk.kill().unwrap();
    src.wait().unwrap();
    snk.wait().unwrap();

    assert!(visible_files(&source).is_empty(), "{}", logs());
    let written = visible_files(&sink);
    assert_eq!(
        written.len(),
        100,
        "duplicates or strays: {written:?}\n{}",
        logs()
    );
    for (name, sha) in &expected {
        let matches: Vec<&String> = written
            .iter()
            .filter(|w| w.ends_with(&format!("-{name}")))
            .collect();
        assert_eq!(matches.len(), 1, "{name}: {matches:?}\n{}", logs());
        assert_eq!(&sha256_file(&sink.join(matches[0])), sha, "{name}");
        assert_eq!(&sha256_file(&done.join(name)), sha, "{name} in done.dir");
    }
}

/// A `ClaimCheck` stage in a source connector's own chain would store payloads the broker's
/// claim GC does not know of (and deletes after `claimcheck.gc.grace`): the runner refuses it
/// at start, saying where the chain belongs.
#[test]
fn a_claim_check_stage_in_a_source_chain_is_refused_with_the_way_out() {
    let work = tempfile::tempdir().unwrap();
    let props = properties(
        &work.path().join("source.properties"),
        &[
            "name=refused".into(),
            "connector.class=DirectorySource".into(),
            "topic=files".into(),
            format!("source.dir={}", work.path().join("in").display()),
            format!("done.dir={}", work.path().join("done").display()),
            format!(
                "claimcheck.store.url=file://{}",
                work.path().join("bucket").display()
            ),
            "transforms=cc".into(),
            "transforms.cc.type=ClaimCheck".into(),
        ],
    );
    let out = strata_tests::run_with_timeout(
        Command::new(strata_bin()).arg("connect").arg(&props),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ClaimCheck") && stderr.contains("on the topic"),
        "{stderr}"
    );
}

/// CSV mode: a file with a bad row (another width) is set aside with its reason, nothing of it
/// sent, and the files after it go on; every row of the good file arrives once.
#[test]
fn a_bad_csv_file_is_set_aside_and_the_next_files_go_on() {
    let strata = Strata::start();
    let work = tempfile::tempdir().unwrap();
    let (source, done) = (work.path().join("source"), work.path().join("done"));
    for d in [&source, &done] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(source.join("a.csv"), "id,name\n1,x\n2,y,extra\n3,z\n").unwrap();
    std::fs::write(source.join("b.csv"), "id,name\n10,p\n11,q\n").unwrap();
    let props = properties(
        &work.path().join("source.properties"),
        &[
            "name=rows".into(),
            format!("bootstrap.servers={}", strata.kafka_addr()),
            "connector.class=DirectorySource".into(),
            "source.mode=csv".into(),
            "topic=rows".into(),
            format!("source.dir={}", source.display()),
            format!("done.dir={}", done.display()),
            "poll.interval.ms=100".into(),
        ],
    );
    let log = work.path().join("source.log");
    let mut child = runner(&props, &log);
    wait_until("b.csv is sent", Duration::from_secs(60), || {
        done.join("b.csv").exists() || child.try_wait().is_ok_and(|s| s.is_some())
    });
    assert!(
        done.join("b.csv").exists(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let _ = child.kill();
    let _ = child.wait();
    let failed = source.join(".strata-connect/failed");
    assert!(
        failed.join("a.csv").exists(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let reason = std::fs::read_to_string(failed.join("a.csv.error.txt")).unwrap();
    assert!(
        reason.contains("record 2") || reason.contains("line 3"),
        "{reason}"
    );
    let out = strata_tests::kcat(
        &[
            "-C",
            "-b",
            &strata.kafka_addr(),
            "-t",
            "rows",
            "-e",
            "-q",
            "-f",
            "%k\n",
        ],
        b"",
    );
    let keys = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        keys.lines().collect::<Vec<_>>(),
        ["b.csv:1", "b.csv:2"],
        "{keys}"
    );
}

/// A sink whose saved offset is out of range (retention passed it, or the topic was created
/// again) goes on from the earliest offset, as a Kafka consumer with auto.offset.reset=earliest,
/// instead of stopping at every start.
#[test]
fn a_sink_with_an_out_of_range_offset_goes_on_from_the_earliest() {
    let strata = Strata::start();
    for body in [b"first payload".to_vec(), b"second payload".to_vec()] {
        let (status, receipt) = claims_support::upload_bytes(&strata, "reset", "", body);
        assert_eq!(status, 201, "{receipt}");
    }
    let work = tempfile::tempdir().unwrap();
    let sink = work.path().join("sink");
    let state = sink.join(".strata-connect");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("out.offsets"), br#"{"0":1000}"#).unwrap();
    let props = properties(
        &work.path().join("sink.properties"),
        &[
            "name=out".into(),
            format!("bootstrap.servers={}", strata.kafka_addr()),
            format!("claimcheck.gateway.url={}", strata.http_url()),
            "connector.class=DirectorySink".into(),
            "topics=reset".into(),
            format!("sink.dir={}", sink.display()),
            "poll.interval.ms=100".into(),
        ],
    );
    let log = work.path().join("sink.log");
    let mut child = runner(&props, &log);
    wait_until("both payloads are written", Duration::from_secs(60), || {
        visible_files(&sink).len() >= 2 || child.try_wait().is_ok_and(|s| s.is_some())
    });
    let _ = child.kill();
    let _ = child.wait();
    let files = visible_files(&sink);
    assert_eq!(
        files.len(),
        2,
        "{files:?}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let mut contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(sink.join(f)).unwrap())
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        [b"first payload".to_vec(), b"second payload".to_vec()]
    );
}

#[test]
fn a_sink_reads_partitions_added_while_it_runs() {
    if !require(Tool::Python) {
        return;
    }
    let strata = Strata::start();
    let (status, receipt) =
        claims_support::upload_bytes(&strata, "grow", "?partition=0", b"before".to_vec());
    assert_eq!(status, 201, "{receipt}");
    let work = tempfile::tempdir().unwrap();
    let sink = work.path().join("sink");
    let props = properties(
        &work.path().join("sink.properties"),
        &[
            "name=grow".into(),
            format!("bootstrap.servers={}", strata.kafka_addr()),
            format!("claimcheck.gateway.url={}", strata.http_url()),
            "connector.class=DirectorySink".into(),
            "topics=grow".into(),
            format!("sink.dir={}", sink.display()),
            "poll.interval.ms=100".into(),
            "metadata.max.age.ms=300".into(),
        ],
    );
    let log = work.path().join("sink.log");
    let mut child = runner(&props, &log);
    wait_until(
        "the first payload is written",
        Duration::from_secs(60),
        || sink.is_dir() && !visible_files(&sink).is_empty(),
    );
    let grown = strata_tests::python(
        "tiering_client.py",
        &["partitions", &strata.kafka_addr(), "grow", "2"],
    );
    strata_tests::assert_success(&grown, "CreatePartitions");
    let (status, receipt) =
        claims_support::upload_bytes(&strata, "grow", "?partition=1", b"after".to_vec());
    assert_eq!(status, 201, "{receipt}");
    wait_until(
        "the new partition's payload is written",
        Duration::from_secs(60),
        || visible_files(&sink).len() >= 2 || child.try_wait().is_ok_and(|s| s.is_some()),
    );
    let _ = child.kill();
    let _ = child.wait();
    let files = visible_files(&sink);
    assert_eq!(
        files,
        [
            "grow-0-00000000000000000000".to_string(),
            "grow-1-00000000000000000000".to_string()
        ],
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(std::fs::read(sink.join(&files[1])).unwrap(), b"after");
}
