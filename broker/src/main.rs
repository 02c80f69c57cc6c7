//! `strata`: a Kafka-compatible broker with tiered storage and a claim-check gateway.

mod cli;

/// jemalloc, not the system allocator, for two reasons. It returns freed memory to the OS well
/// under the streaming workloads (claim uploads, cold reads) whose RSS we bound. And it maps
/// huge reservations lazily (MAP_NORESERVE when the OS overcommits): the `kafka-protocol` decoder
/// reserves `Vec::with_capacity(count)` from an array count read off the wire before reading any
/// element, and with the system allocator a 30-byte frame claiming 2^31 elements makes the
/// reservation fail and the process abort. With jemalloc the untouched reservation costs nothing
/// and the decode fails cleanly on the next read (tests/tests/kafka_bad_input.rs proves it).
/// Its options (one arena per CPU, so peak memory does not grow with the thread count) are
/// compiled in from `.cargo/config.toml`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
