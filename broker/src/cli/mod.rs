//! The command line: one subcommand per job, each in its own file.

mod claim;
mod claim_get;
mod claim_put;
mod claims_gc;
mod connect;
mod export;
mod serve;
mod tier;

use clap::{Parser, Subcommand};

/// Strata: a Kafka-compatible broker with tiered storage (KIP-405) and a claim-check gateway
/// for multi-GB payloads.
///
/// Run `strata serve` with no flags to keep the log under ./data, its remote tier in
/// ./data/remote, and listen for Kafka clients on 127.0.0.1:9092 and HTTP on 127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker: Kafka listener, HTTP listener (health, metrics, claim-check API),
    /// log engine and remote tier.
    Serve(serve::ServeArgs),
    /// Tiered storage of a running broker: `status` (local/remote bytes, offsets, upload lag).
    Tier(tier::TierArgs),
    /// Upload a file as a claim (`put`) or download a claimed payload (`get`) through the
    /// claim-check gateway of a running broker.
    Claim(claim::ClaimArgs),
    /// Claim maintenance on a running broker: `gc [--dry-run]`.
    Claims(claims_gc::ClaimsArgs),
    /// Run a DirectorySource or DirectorySink connector from a properties file.
    Connect(connect::ConnectArgs),
    /// Export a topic range (local and remote tier) of a stopped broker to Parquet + manifest;
    /// `verify DIR` checks an export.
    Export(export::ExportArgs),
}

pub(crate) use strata_broker::http::base_url as http_base_url;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Tier(args) => tier::run(args),
        Command::Claim(args) => claim::run(args),
        Command::Claims(args) => claims_gc::run(args),
        Command::Connect(args) => connect::run(args),
        Command::Export(args) => export::run(args),
    }
}
