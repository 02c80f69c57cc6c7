//! `strata claim put FILE --topic T`: resumable upload of a file with a progress bar.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use strata_claimcheck::cli::{PutFileOptions, put_file};
use strata_claimcheck::{ClaimError, UploadId};

use super::claim::{GatewayArg, runtime, show_progress};

/// Upload FILE and append its claim ticket to TOPIC.
///
/// The file goes to the object store through the resumable upload API in parts (each part
/// hashed and retried), then one small ticket record lands in the topic with acks=all. The
/// receipt (ticket JSON with partition and offset) is printed on stdout. If the upload is
/// interrupted, the error names the upload id: run the same command with --resume ID.
///
/// Example: strata claim put video.mp4 --topic videos --key cam-7
#[derive(Debug, Args)]
pub struct ClaimPutArgs {
    /// The file to upload.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Topic the ticket goes to (auto-created when auto.create.topics.enable is true).
    #[arg(long, short = 't', value_name = "TOPIC")]
    topic: String,

    /// Record key of the ticket (also picks the partition when --partition is not given).
    #[arg(long, short = 'k', value_name = "KEY")]
    key: Option<String>,

    /// Partition of the ticket. [default: by key hash, else round robin]
    #[arg(long, short = 'p', value_name = "N")]
    partition: Option<i32>,

    /// Content type recorded in the ticket. [default: application/octet-stream]
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,

    /// Size of each uploaded part, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    part_bytes: u64,

    /// Continue an interrupted upload (the id its error printed).
    #[arg(long, value_name = "UPLOAD_ID")]
    resume: Option<String>,

    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    gateway: GatewayArg,
}

pub fn run(args: ClaimPutArgs) -> anyhow::Result<()> {
    let mut options = PutFileOptions::new(&args.topic);
    options.key = args.key;
    options.partition = args.partition;
    options.content_type = args.content_type;
    options.part_bytes = args.part_bytes.max(1);
    options.show_progress = show_progress(args.quiet);
    options.resume = args
        .resume
        .as_deref()
        .map(str::parse::<UploadId>)
        .transpose()
        .context("--resume")?;
    let receipt = runtime()?
        .block_on(put_file(&args.gateway.gateway, &args.file, &options))
        .map_err(|e| match &e {
            ClaimError::Interrupted { upload, .. } => anyhow::anyhow!(
                "{e}\nresume with: strata claim put {} --topic {} --resume {upload}",
                args.file.display(),
                args.topic
            ),
            _ => anyhow::Error::new(e),
        })
        .with_context(|| format!("uploading {}", args.file.display()))?;
    println!("{}", serde_json::to_string_pretty(&receipt)?);
    Ok(())
}
