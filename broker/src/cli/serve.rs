//! `strata serve`: loads the configuration, binds the listeners, starts every subsystem and
//! shuts them down in order on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tracing::info;

use strata_broker::config::{LogFormat, Overrides, StrataConfig};
use strata_broker::{http, metrics};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file. Flags and STRATA_* variables override what it says.
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Directory holding the log (segments, indexes, topic metadata). [default: ./data]
    #[arg(long, env = "STRATA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Address the Kafka protocol listener binds. [default: 127.0.0.1:9092]
    #[arg(long, env = "STRATA_KAFKA_LISTEN", value_name = "ADDR")]
    kafka_listen: Option<String>,

    /// Address the HTTP listener (health, metrics, claim-check API) binds. [default: 127.0.0.1:8080]
    #[arg(long, env = "STRATA_HTTP_LISTEN", value_name = "ADDR")]
    http_listen: Option<String>,

    /// Remote tier URL: file://DIR, s3://BUCKET/PREFIX (with the standard AWS_* variables,
    /// AWS_ENDPOINT_URL included), gs://BUCKET/PREFIX or az://CONTAINER/PREFIX.
    /// [default: file://<data-dir>/remote]
    #[arg(long, env = "STRATA_REMOTE", value_name = "URL")]
    remote: Option<String>,

    /// Log format: text or json. Verbosity comes from RUST_LOG (default: info).
    #[arg(long, env = "STRATA_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,

    /// A Kafka broker config by its Kafka name, e.g. --set log.segment.bytes=1048576.
    /// Repeatable; STRATA_SET takes a comma-separated list.
    #[arg(long = "set", env = "STRATA_SET", value_name = "KEY=VALUE", value_delimiter = ',')]
    set: Vec<String>,

    /// Print the effective configuration (every key, defaults filled in) as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let overrides = Overrides {
        data_dir: args.data_dir,
        kafka_listen: args.kafka_listen,
        http_listen: args.http_listen,
        remote: args.remote,
        log_format: args.log_format,
        set: args.set,
    };
    let config = StrataConfig::load(args.config.as_deref(), overrides)
        .context("invalid configuration")?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    init_tracing(config.log_format);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, started))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: StrataConfig, started: Instant) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;

    let kafka_listener = TcpListener::bind(config.kafka_listen)
        .await
        .with_context(|| format!("binding the Kafka listener to {} (is another broker running? use --kafka-listen)", config.kafka_listen))?;
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding the HTTP listener to {} (use --http-listen)", config.http_listen))?;

    let registry = metrics::new_registry(started);
    let metrics = metrics::MetricsHandle::new(registry);
    let app = http::ops_router(metrics);

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut http_shutdown = shutdown_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });
    // Until the protocol server is wired in, the Kafka port is bound (so it is reserved and
    // reported) but accepts nothing.
    let _kafka_listener = kafka_listener;

    info!(
        kafka = %config.kafka_listen,
        http = %config.http_listen,
        data_dir = %config.data_dir.display(),
        remote = %config.remote,
        startup_ms = started.elapsed().as_millis() as u64,
        "strata ready"
    );

    wait_for_signal().await?;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    http_task
        .await
        .context("joining the HTTP server")?
        .context("serving HTTP")?;
    info!("stopped cleanly");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
