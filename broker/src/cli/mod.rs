//! The command line: one subcommand per job, each in its own file.

mod serve;

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
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}
