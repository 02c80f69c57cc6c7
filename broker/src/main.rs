//! `strata`: a Kafka-compatible broker with tiered storage and a claim-check gateway.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "starting the broker: ...: ...".
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
