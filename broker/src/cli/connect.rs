//! `strata connect PROPERTIES_FILE`: runs one DirectorySource or DirectorySink connector
//! against a running broker (see `strata_broker::connect` and docs/transforms.md).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Kafka Connect style properties: name, connector.class=DirectorySource|DirectorySink,
    /// bootstrap.servers, claimcheck.gateway.url, topic / topics, source.dir, done.dir,
    /// sink.dir, transforms=... (docs/transforms.md).
    #[arg(value_name = "PROPERTIES_FILE")]
    properties: PathBuf,
}

pub fn run(args: ConnectArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    super::claim::runtime()?.block_on(strata_broker::connect::run(&args.properties))
}
