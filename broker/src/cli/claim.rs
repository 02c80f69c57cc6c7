//! `strata claim put|get`: upload a file through the claim-check gateway, download a payload.

use clap::{Args, Subcommand};

use super::claim_get::ClaimGetArgs;
use super::claim_put::ClaimPutArgs;

/// The gateway to talk to, shared by `strata claim` and `strata claims`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArg {
    /// Base URL of the broker's HTTP listener, the claim-check gateway (`host:port` means
    /// `http://host:port`).
    #[arg(
        long,
        env = "STRATA_GATEWAY",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        value_parser = super::http_base_url
    )]
    pub gateway: String,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    #[command(subcommand)]
    pub command: ClaimCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClaimCommand {
    /// Upload FILE to the object store through the gateway and append its claim ticket to a
    /// topic (resumable: an interrupted upload prints its id; pass it with --resume).
    Put(ClaimPutArgs),
    /// Download a claimed payload by claim id, or by the ticket record's topic and offset,
    /// verifying its size and SHA-256 before the output file appears.
    Get(ClaimGetArgs),
}

pub fn run(args: ClaimArgs) -> anyhow::Result<()> {
    match args.command {
        ClaimCommand::Put(args) => super::claim_put::run(args),
        ClaimCommand::Get(args) => super::claim_get::run(args),
    }
}

/// A small runtime for the client commands.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Progress bars only on an interactive terminal unless asked otherwise.
pub(crate) fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
}
