//! `strata tier status`: per-partition tiering status of a broker, as a table.
//!
//! Reads `GET /v1/tier/status` from a running broker (`--http`, default the local default
//! listener) or, with `--data-dir`, the `tier-status.json` snapshot the broker refreshes there
//! every second (works while the HTTP port is unreachable; shows the last state if stopped).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use strata_broker::tiered::status::{PendingRestore, TierStatusReport, status_file};

#[derive(Debug, Args)]
pub struct TierArgs {
    #[command(subcommand)]
    command: TierCommand,
}

#[derive(Debug, Subcommand)]
enum TierCommand {
    /// Local and remote bytes, offsets and upload lag of every tiered partition.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Base URL of the broker's HTTP listener (`host:port` means `http://host:port`).
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        value_parser = super::http_base_url,
        conflicts_with = "data_dir"
    )]
    http: String,
    /// Read the status snapshot in this data directory instead of asking over HTTP.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TierArgs) -> anyhow::Result<()> {
    match args.command {
        TierCommand::Status(args) => status(args),
    }
}

// The header row passes literal cells through the same format string as the data rows.
#[allow(clippy::print_literal)]
fn status(args: StatusArgs) -> anyhow::Result<()> {
    let report: TierStatusReport = match &args.data_dir {
        Some(dir) => {
            let path = status_file(dir);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "reading {} (is a broker with a remote tier using this data directory?)",
                    path.display()
                )
            })?;
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?
        }
        None => {
            let url = format!("{}/v1/tier/status", args.http.trim_end_matches('/'));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let response = reqwest::get(&url)
                    .await
                    .with_context(|| format!("asking {url} (is the broker running? use --http)"))?
                    .error_for_status()
                    .with_context(|| format!("asking {url}"))?;
                response
                    .json()
                    .await
                    .with_context(|| format!("parsing the answer of {url}"))
            })?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "remote tier: {}",
        if report.remote.is_empty() {
            "(disabled)"
        } else {
            &report.remote
        }
    );
    match &report.restore_pending {
        PendingRestore::Nothing => {}
        PendingRestore::EveryTopic => println!(
            "restore from the remote tier: unfinished, the bucket could not be read yet (retried every task interval; no topic can be created meanwhile)"
        ),
        PendingRestore::Topics(topics) => println!(
            "restore from the remote tier: unfinished, still to restore: {} (retried every task interval)",
            topics.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
    println!(
        "{:<32} {:>4} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}  {}",
        "TOPIC",
        "PART",
        "TIERED",
        "LOCAL_BYTES",
        "REMOTE_BYTES",
        "LAG_BYTES",
        "LOG_START",
        "LOCAL_START",
        "REMOTE_START",
        "TIERED_TO",
        "LOG_END",
        "LAST_ERROR"
    );
    for p in &report.partitions {
        println!(
            "{:<32} {:>4} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}  {}",
            p.topic,
            p.partition,
            if p.tiered { "yes" } else { "no" },
            p.local_bytes,
            p.remote_bytes,
            p.upload_lag_bytes,
            p.log_start_offset,
            p.local_log_start_offset,
            p.remote_log_start_offset,
            p.highest_tiered_offset,
            p.log_end_offset,
            p.last_error.as_deref().unwrap_or("-")
        );
    }
    if report.partitions.is_empty() {
        println!("(no tiered partitions)");
    }
    Ok(())
}
