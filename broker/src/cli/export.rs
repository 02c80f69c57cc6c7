//! `strata export`: a topic's history (local and remote tier) to Parquet, and `strata export
//! verify` to check an export against its manifest. See `strata_broker::export`. The same
//! export runs inside a running broker as `POST /v1/exports` (`export/http.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use strata_broker::export::ValueFormat;
use strata_broker::export::destination::Destination;
use strata_broker::export::job::{
    Bound, DEFAULT_ZSTD_LEVEL, ExportRequest, ExportSource, run_export,
};
use strata_broker::export::manifest::{MANIFEST_FILE, verify};
use strata_broker::export::progress::ExportProgress;
use strata_broker::log::{LogManager, LogManagerConfig};
use strata_broker::tiered::retention::expose_remote_log_start;

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
    /// Export from the first record stamped at or after this time (RFC 3339 with a UTC offset:
    /// 2026-11-01T00:00:00Z, 2026-11-01T01:00:00+01:00).
    #[arg(long, value_name = "RFC3339")]
    from_time: Option<String>,
    /// Last offset to export (inclusive).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// Export up to the last record before the first one stamped after this time (RFC 3339
    /// with a UTC offset).
    #[arg(long, value_name = "RFC3339")]
    to_time: Option<String>,
    /// Where the Parquet files and manifest.json go: a directory (created if missing) or an
    /// object-store URL (s3://bucket/prefix with the broker's AWS_* variables, gs://, az://).
    /// Must not hold a complete export; an interrupted one with the same parameters resumes.
    #[arg(long, value_name = "DIR|URL", required = true)]
    out: Option<String>,
    /// Close a Parquet file and start the next once it reaches about this many bytes.
    /// [default: one file per partition]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_file_bytes: Option<u64>,
    /// Read each claim ticket's payload from the claim store and check its size and SHA-256;
    /// mismatches are listed in the manifest and make the export exit non-zero.
    #[arg(long)]
    verify_claims: bool,
    /// How the `value` column holds record values: `binary` (the bytes as produced), `utf8`
    /// (text) or `json` (text typed as JSON in Parquet). With `utf8` or `json`, a value that is
    /// not valid UTF-8 or JSON fails the export, naming its offset.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ValueFormat::Binary)]
    value_format: ValueFormat,
    /// zstd level of the Parquet pages: higher levels (up to 22) write smaller files more
    /// slowly, negative ones larger files faster.
    #[arg(long, value_name = "LEVEL", default_value_t = DEFAULT_ZSTD_LEVEL, allow_negative_numbers = true)]
    zstd_level: i32,
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Recompute the size, SHA-256 and row count of every file of DEST/manifest.json, check
    /// that the files cover the exported ranges exactly once and that DEST holds no other
    /// Parquet file (nor an unfinished .parquet.tmp).
    Verify {
        #[arg(value_name = "DIR|URL")]
        dest: String,
    },
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    if let Some(ExportCommand::Verify { dest }) = args.command {
        return runtime.block_on(run_verify(&dest));
    }
    runtime.block_on(run_export_command(args))
}

async fn run_verify(text: &str) -> anyhow::Result<()> {
    let dest = Destination::parse(text)?;
    let (manifest, problems) = verify(&dest).await?;
    if problems.is_empty() {
        let records: u64 = manifest.files.iter().map(|f| f.records).sum();
        println!(
            "OK: {} file(s), {records} record(s) of topic {} match {}",
            manifest.files.len(),
            manifest.topic,
            dest.describe(MANIFEST_FILE)
        );
        return Ok(());
    }
    for p in &problems {
        eprintln!("MISMATCH {}: {}", p.file, p.problem);
    }
    bail!(
        "{} problem(s) in {}",
        problems.len(),
        dest.describe(MANIFEST_FILE)
    )
}

fn bound(offset: Option<i64>, time: Option<&str>, flag: &str) -> anyhow::Result<Bound> {
    match (offset, time) {
        (Some(o), _) => Ok(Bound::Offset(o)),
        (None, Some(t)) => Ok(Bound::parse_time(flag, t)?),
        (None, None) => bail!("missing the {flag} bound"),
    }
}

/// The remote tier's read settings for a one-pass sequential read: the chunk being read plus
/// the prefetched ones fit the memory cache, nothing more (the default 256 MiB cache serves a
/// broker's many consumers, not one export), and no disk cache.
fn export_tiering_config() -> strata_tiering::TieringConfig {
    let mut config = strata_tiering::TieringConfig::default();
    config.read_ahead_chunks = 2;
    config.cache_memory_bytes = (config.chunk_size * (config.read_ahead_chunks + 2)) as u64;
    config.cache_dir = None;
    config
}

async fn run_export_command(args: ExportArgs) -> anyhow::Result<()> {
    let (Some(data_dir), Some(topic), Some(out)) = (args.data_dir, args.topic, args.out) else {
        bail!("--data-dir, --topic and --out are required");
    };
    // Before anything is opened or created.
    strata_broker::export::parquet_writer::zstd(args.zstd_level)?;
    let request = ExportRequest {
        topic,
        partitions: args.partitions,
        from: bound(args.from_offset, args.from_time.as_deref(), "--from-time")?,
        to: bound(args.to_offset, args.to_time.as_deref(), "--to-time")?,
        max_file_bytes: args.max_file_bytes,
        verify_claims: args.verify_claims,
        value_format: args.value_format,
        zstd_level: args.zstd_level,
    };
    if !data_dir.join("topics.json").exists() {
        bail!(
            "{} is not a strata data directory (no topics.json)",
            data_dir.display()
        );
    }
    let dest = Destination::parse(&out)?;
    // Before opening the log: an unwritable destination fails before anything is read.
    dest.probe_writable()
        .await
        .with_context(|| format!("{dest} is not writable"))?;

    let remote_url = args.remote.or_else(|| {
        let dir = data_dir.join("remote");
        dir.is_dir().then(|| format!("file://{}", dir.display()))
    });
    let remote = match &remote_url {
        Some(url) => Some(
            strata_tiering::RemoteLogManager::from_url(url, export_tiering_config())
                .with_context(|| format!("opening the remote tier {url}"))?,
        ),
        None => None,
    };
    // Claim payloads live under the remote tier's prefix (see broker/src/claims).
    let claims = match &remote {
        Some(rlm) => {
            let store = rlm.remote();
            let prefix = store
                .prefix
                .clone()
                .join(strata_broker::claims::CLAIMS_PREFIX);
            Some(
                strata_claimcheck::ClaimStore::new(store.store.clone(), prefix.as_ref())
                    .context("opening the claim store")?,
            )
        }
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
            "opening {} (is a broker still running on it? export needs it stopped; \
             use POST /v1/exports on a running broker)",
            data_dir.display()
        )
    })?;
    if let (Some(remote), Some(topic)) = (&remote, log.topic(&request.topic)) {
        // Opening clamped each log start to local data: lower it over the remote tier as the
        // broker does at start, never below the DeleteRecords point the data directory keeps.
        for p in 0..topic.partitions {
            if let Some(partition) = log.partition(&request.topic, p) {
                remote.register_partition(&request.topic, partition.topic_id(), p);
                expose_remote_log_start(remote, &partition).await;
            }
        }
    }
    let source = ExportSource {
        log: Arc::clone(&log),
        remote,
        claims,
    };
    let result = export_with_progress(&source, &request, &dest).await;
    drop(source);
    log.shutdown().await.context("closing the data directory")?;
    result
}

async fn export_with_progress(
    source: &ExportSource,
    request: &ExportRequest,
    dest: &Destination,
) -> anyhow::Result<()> {
    let progress = ExportProgress::default();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} offsets {per_sec} eta {eta}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    bar.set_message(request.topic.clone());
    let ticker = {
        let (bar, progress) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                let (done, total) = progress.totals();
                bar.set_length(total);
                bar.set_position(done);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    // Ctrl-C stops cleanly: the file being written is abandoned (no open multipart upload is
    // left in a bucket) and a re-run resumes. A second Ctrl-C stops at once.
    let interrupts = {
        let progress = progress.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!("\ninterrupted: stopping after cleaning up (Ctrl-C again to quit at once)");
            progress.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        })
    };
    let result = run_export(source, request, dest, &progress).await;
    interrupts.abort();
    ticker.abort();
    bar.finish_and_clear();
    let manifest = result?;
    for f in &manifest.files {
        println!(
            "{}: {} record(s), offsets {}..{}",
            f.file,
            f.records,
            f.first_offset.map_or("-".into(), |o| o.to_string()),
            f.last_offset.map_or("-".into(), |o| o.to_string()),
        );
    }
    println!("manifest: {}", dest.describe(MANIFEST_FILE));
    if let Some(claims) = &manifest.claims {
        println!(
            "claim tickets: {}{}",
            claims.tickets,
            if claims.verified {
                " (payloads checked)"
            } else {
                ""
            }
        );
        for f in &claims.failures {
            eprintln!(
                "CLAIM MISMATCH {}-{}@{} claim {}: {}",
                manifest.topic, f.partition, f.offset, f.id, f.problem
            );
        }
        if !claims.failures.is_empty() {
            bail!(
                "{} claim payload(s) do not match their tickets (listed in {})",
                claims.failures.len(),
                dest.describe(MANIFEST_FILE)
            );
        }
    }
    Ok(())
}
