//! `strata claim get CLAIM_ID -o FILE` and `strata claim get --topic T --offset N -o FILE`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use strata_claimcheck::cli::get_file;
use strata_claimcheck::{ClaimId, ClaimReceipt};

use super::claim::{GatewayArg, runtime, show_progress};

/// Download a claimed payload to FILE, verified.
///
/// Give the claim id (from the ticket's `id` or the `claimcheck.id` header), or the position of
/// the ticket record (--topic, --offset and optionally --partition): the broker reads the
/// ticket from its log. The download is written to a temporary file next to FILE and renamed
/// only once its size and SHA-256 match the ticket's.
///
/// Examples: strata claim get 3f2a...e1 -o video.mp4
///           strata claim get --topic videos --partition 0 --offset 42 -o video.mp4
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["claim_id", "topic"])))]
pub struct ClaimGetArgs {
    /// The claim id (32 hex digits).
    #[arg(value_name = "CLAIM_ID", conflicts_with = "topic")]
    claim_id: Option<String>,

    /// Topic of the ticket record (with --offset).
    #[arg(long, short = 't', value_name = "TOPIC", requires = "offset")]
    topic: Option<String>,

    /// Offset of the ticket record (with --topic).
    #[arg(long, value_name = "N", requires = "topic")]
    offset: Option<i64>,

    /// Partition of the ticket record.
    #[arg(long, short = 'p', value_name = "N", default_value_t = 0)]
    partition: i32,

    /// Where to write the payload.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,

    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    gateway: GatewayArg,
}

pub fn run(args: ClaimGetArgs) -> anyhow::Result<()> {
    let gateway = args.gateway.gateway.trim_end_matches('/').to_string();
    runtime()?.block_on(async {
        let id: ClaimId = match (&args.claim_id, &args.topic, args.offset) {
            (Some(id), _, _) => id.parse().context("CLAIM_ID")?,
            (None, Some(topic), Some(offset)) => {
                let url = format!(
                    "{gateway}/v1/topics/{topic}/partitions/{}/records/{offset}/claim",
                    args.partition
                );
                let response = reqwest::get(&url)
                    .await
                    .with_context(|| format!("GET {url}"))?;
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                anyhow::ensure!(status.is_success(), "GET {url}: {status}: {body}");
                let receipt: ClaimReceipt =
                    serde_json::from_str(&body).context("reading the ticket")?;
                receipt.ticket.id
            }
            _ => anyhow::bail!("give a CLAIM_ID, or --topic and --offset"),
        };
        let head = get_file(&gateway, id, &args.output, show_progress(args.quiet))
            .await
            .with_context(|| format!("downloading claim {id}"))?;
        eprintln!(
            "claim {id}: {} bytes, sha256 {} verified -> {}",
            head.size,
            head.sha256,
            args.output.display()
        );
        Ok(())
    })
}
