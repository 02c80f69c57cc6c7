//! `strata export`: a topic's history (local and remote tier) to Parquet, and `strata export
//! verify` to check an export against its manifest. See `strata_broker::export`.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use strata_broker::export::job::{Bound, export_partition, resolve_range};
use strata_broker::export::manifest::{MANIFEST_FILE, MANIFEST_VERSION, Manifest, verify};
use strata_broker::log::{LogManager, LogManagerConfig};

/// Export runs against the data directory of a STOPPED broker (it takes the directory's lock, so
/// a running broker makes it fail up front), plus the broker's remote tier for offsets that
/// only the bucket still holds.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group(ArgGroup::new("from").required(true).args(["from_offset", "from_time"])),
    group(ArgGroup::new("to").required(true).args(["to_offset", "to_time"])),
)]
pub struct ExportArgs {
    #[command(subcommand)]
    command: Option<ExportCommand>,
    /// Data directory of a stopped broker.
    #[arg(long, value_name = "DIR", required = true)]
    data_dir: Option<PathBuf>,
    /// Remote tier of that broker (e.g. s3://bucket/prefix, file:///path) for offsets below
    /// local data. [default: file://<data-dir>/remote when that directory exists]
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// Topic to export.
    #[arg(long, value_name = "TOPIC", required = true)]
    topic: Option<String>,
    /// Partitions to export, comma-separated. [default: all]
    #[arg(long, value_name = "P,...", value_delimiter = ',')]
    partitions: Vec<i32>,
    /// First offset to export (inclusive).
    #[arg(long, value_name = "N")]
    from_offset: Option<i64>,
    /// Export from the first record stamped at or after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    from_time: Option<String>,
    /// Last offset to export (inclusive).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// Export up to the last record before the first one stamped after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    to_time: Option<String>,
    /// Local directory for the Parquet files and manifest.json (created if missing; must not
    /// hold a manifest already).
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Recompute the size, SHA-256 and row count of every file in DIR/manifest.json.
    Verify {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    if let Some(ExportCommand::Verify { dir }) = args.command {
        return run_verify(&dir);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(run_export(args))
}

fn run_verify(dir: &Path) -> anyhow::Result<()> {
    let (manifest, problems) = verify(dir)?;
    if problems.is_empty() {
        let records: u64 = manifest.files.iter().map(|f| f.records).sum();
        println!(
            "OK: {} file(s), {records} record(s) of topic {} match {}",
            manifest.files.len(),
            manifest.topic,
            dir.join(MANIFEST_FILE).display()
        );
        return Ok(());
    }
    for p in &problems {
        eprintln!("MISMATCH {}: {}", p.file, p.problem);
    }
    bail!(
        "{} problem(s) in {}",
        problems.len(),
        dir.join(MANIFEST_FILE).display()
    )
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<i64> {
    let time = humantime::parse_rfc3339_weak(text)
        .with_context(|| format!("{flag} {text:?} is not an RFC 3339 time"))?;
    let ms = time
        .duration_since(UNIX_EPOCH)
        .with_context(|| format!("{flag} {text:?} is before 1970"))?
        .as_millis();
    Ok(ms as i64)
}

fn bound(offset: Option<i64>, time: Option<&str>, flag: &str) -> anyhow::Result<Bound> {
    match (offset, time) {
        (Some(o), _) => Ok(Bound::Offset(o)),
        (None, Some(t)) => Ok(Bound::Time(parse_time(flag, t)?)),
        (None, None) => bail!("missing the {flag} bound"),
    }
}

/// Creates `out` and proves it writable before any log is read.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    if out.join(MANIFEST_FILE).exists() {
        bail!(
            "{} already holds an export ({MANIFEST_FILE}); choose an empty directory",
            out.display()
        );
    }
    let probe = out.join(".strata-export-probe");
    std::fs::write(&probe, b"").with_context(|| format!("{} is not writable", out.display()))?;
    std::fs::remove_file(&probe).with_context(|| format!("cleaning {}", probe.display()))?;
    Ok(())
}

async fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let (Some(data_dir), Some(topic), Some(out)) = (args.data_dir, args.topic, args.out) else {
        bail!("--data-dir, --topic and --out are required");
    };
    let from = bound(args.from_offset, args.from_time.as_deref(), "--from-time")?;
    let to = bound(args.to_offset, args.to_time.as_deref(), "--to-time")?;
    if !data_dir.join("topics.json").exists() {
        bail!(
            "{} is not a strata data directory (no topics.json)",
            data_dir.display()
        );
    }
    prepare_out(&out)?;

    let remote_url = args.remote.or_else(|| {
        let dir = data_dir.join("remote");
        dir.is_dir().then(|| format!("file://{}", dir.display()))
    });
    let remote = match &remote_url {
        Some(url) => Some(
            strata_tiering::RemoteLogManager::from_url(url, Default::default())
                .with_context(|| format!("opening the remote tier {url}"))?,
        ),
        None => None,
    };

    // Background rolls, retention and checkpoints pushed beyond the export's lifetime.
    let mut config = LogManagerConfig::new(&data_dir);
    let never = Duration::from_secs(365 * 24 * 3600);
    config.retention_check_interval = never;
    config.roll_check_interval = never;
    config.checkpoint_interval = never;
    let log = LogManager::open(config).await.with_context(|| {
        format!(
            "opening {} (is a broker still running on it? export needs it stopped)",
            data_dir.display()
        )
    })?;
    let result = export_topic(&log, remote, &topic, &args.partitions, from, to, &out).await;
    log.shutdown().await.context("closing the data directory")?;
    result
}

async fn export_topic(
    log: &LogManager,
    remote: Option<strata_tiering::RemoteLogManager>,
    topic: &str,
    partitions: &[i32],
    from: Bound,
    to: Bound,
    out: &Path,
) -> anyhow::Result<()> {
    let meta = log
        .topic(topic)
        .with_context(|| format!("topic {topic} does not exist in the data directory"))?;
    let wanted: Vec<i32> = if partitions.is_empty() {
        (0..meta.partitions).collect()
    } else {
        partitions.to_vec()
    };
    let mut plan = Vec::new();
    for p in wanted {
        let partition = log.partition(topic, p).with_context(|| {
            format!(
                "topic {topic} has no partition {p} (it has {})",
                meta.partitions
            )
        })?;
        if let Some(remote) = &remote {
            remote.register_partition(topic, partition.topic_id(), p);
        }
        let range = resolve_range(&partition, remote.as_ref(), from, to).await?;
        plan.push((partition, range));
    }

    let total: u64 = plan.iter().map(|(_, r)| r.len()).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} offsets {per_sec} eta {eta}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let mut files = Vec::new();
    for (partition, range) in plan {
        bar.set_message(format!("{topic}-{}", range.partition));
        let progress_bar = bar.clone();
        let file = export_partition(partition, remote.clone(), range, out, &mut move |n| {
            progress_bar.inc(n)
        })
        .await?;
        files.push(file);
    }
    bar.finish_and_clear();

    let manifest = Manifest {
        version: MANIFEST_VERSION,
        topic: topic.to_string(),
        created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        files,
    };
    let path = manifest.write(out)?;
    for f in &manifest.files {
        println!(
            "{}: {} record(s), offsets {}..{}",
            f.file,
            f.records,
            f.first_offset.map_or("-".into(), |o| o.to_string()),
            f.last_offset.map_or("-".into(), |o| o.to_string()),
        );
    }
    println!("manifest: {}", path.display());
    Ok(())
}
