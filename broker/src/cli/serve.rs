//! `strata serve`: loads the configuration, binds the listeners, starts every subsystem and
//! shuts them down in order on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use strata_broker::claims::ClaimGateway;
use strata_broker::config::{LogFormat, Overrides, StrataConfig};
use strata_broker::export::job::ExportSource;
use strata_broker::kafka::{self, BrokerContext, BrokerContextParams};
use strata_broker::log::{LogManager, LogManagerConfig};
use strata_broker::tiered::{TierSettings, TieredStorage};
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
    #[arg(
        long = "set",
        env = "STRATA_SET",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
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
    let config =
        StrataConfig::load(args.config.as_deref(), overrides).context("invalid configuration")?;
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: StrataConfig, started: Instant) -> anyhow::Result<()> {
    // First, so that a stop signal arriving while the broker starts is kept and answered with a
    // clean shutdown once it is up, not with the default action (death without a checkpoint).
    let stop_signals = StopSignals::install()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;

    let kafka_listener = TcpListener::bind(config.kafka_listen)
        .await
        .with_context(|| {
            format!(
                "binding the Kafka listener to {} (is another broker running? use --kafka-listen)",
                config.kafka_listen
            )
        })?;
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| {
            format!(
                "binding the HTTP listener to {} (use --http-listen)",
                config.http_listen
            )
        })?;

    // The bound addresses, which differ from the configured ones when a port is 0 (any free one).
    let kafka_bound = kafka_listener.local_addr()?;
    let http_bound = http_listener.local_addr()?;

    let log = LogManager::open(log_manager_config(&config)?)
        .await
        .with_context(|| format!("opening the log in {}", config.data_dir.display()))?;
    let (advertised_host, advertised_port) = advertised_address(&config, kafka_bound)?;
    let broker = BrokerContext::open(BrokerContextParams {
        log: Arc::clone(&log),
        state_dir: config.data_dir.join("kafka"),
        advertised_host,
        advertised_port,
        broker_configs: config.broker.clone(),
    })
    .context("starting the Kafka protocol server")?;

    let mut registry = metrics::new_registry(started);
    broker.metrics.register(&mut registry);
    log.register_metrics(&mut registry);
    let http_metrics = http::HttpMetrics::default();
    http_metrics.register(&mut registry);
    let export_metrics = strata_broker::export::progress::ExportMetrics::default();
    export_metrics.register(&mut registry);
    let tiered = start_tiered(&config, &log, &broker).await?;
    // After a restore from the bucket, which brings topics back.
    broker
        .groups
        .forget_offsets_of_missing_topics(|topic| log.topic(topic).is_some())
        .await
        .context("removing the committed offsets of deleted topics")?;
    if let Some(tiered) = &tiered {
        tiered.register_metrics(&mut registry);
    }
    let metrics = metrics::MetricsHandle::new(registry);
    let app = http::ops_router(metrics);
    // After start_tiered: the gateway takes the cold reader and append admission it installed.
    let claims = ClaimGateway::build(&config, Arc::clone(&log), &broker)
        .context("starting the claim-check gateway")?;
    // Transform chains on produce/fetch share the gateway's claim store (smt/).
    broker.set_smt(Arc::new(match &claims {
        Some(gateway) => strata_broker::smt::SmtEngine::with_claims(
            gateway.service.store().clone(),
            gateway.service.config().clone(),
        ),
        None => strata_broker::smt::SmtEngine::without_claims(),
    }));
    let app = match &claims {
        Some(gateway) => app.merge(gateway.router()),
        None => app,
    };

    let app = match &tiered {
        Some(tiered) => app.merge(tiered.router()),
        None => app,
    };
    // Export jobs read through this broker's own log and remote tier (export/http.rs).
    let exports = strata_broker::export::http::ExportJobs::new(
        ExportSource {
            log: Arc::clone(&log),
            remote: tiered.as_ref().map(|t| t.rlm.clone()),
            claims: claims.as_ref().map(|g| g.service.store().clone()),
        },
        export_metrics,
    );
    let app = http_metrics.track(app.merge(exports.router()));

    let shutdown = CancellationToken::new();
    let kafka_task = tokio::spawn(kafka::serve(
        kafka_listener,
        Arc::clone(&broker),
        shutdown.clone(),
    ));
    let http_shutdown = shutdown.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
    });

    // The claim GC trusts the logical log starts: start it after the remote tier exposed them.
    if let Some(gateway) = &claims {
        gateway.start_maintenance();
    }
    info!(
        kafka = %kafka_bound,
        http = %http_bound,
        data_dir = %config.data_dir.display(),
        remote = %config.remote,
        topics = log.topics().len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "strata ready"
    );

    stop_signals.wait().await;
    info!("shutting down");
    // Stop taking requests first, then make the log durable and write its clean-shutdown
    // checkpoint so that the next start skips recovery.
    shutdown.cancel();
    if let Some(gateway) = &claims {
        gateway.shutdown();
    }
    kafka_task
        .await
        .context("joining the Kafka server")?
        .context("serving Kafka")?;
    http_task
        .await
        .context("joining the HTTP server")?
        .context("serving HTTP")?;
    if let Some(tiered) = &tiered {
        tiered.shutdown().await;
    }
    log.shutdown().await.context("flushing the log")?;
    info!("stopped cleanly");
    Ok(())
}

/// The remote tier (`None` when `remote.log.storage.system.enable=false`): built from
/// `config.remote` and the `remote.log.*` broker configs, fenced with a writer epoch above both
/// this start's broker epoch and any epoch already in the bucket.
async fn start_tiered(
    config: &StrataConfig,
    log: &Arc<LogManager>,
    broker: &BrokerContext,
) -> anyhow::Result<Option<Arc<TieredStorage>>> {
    // Static configs overlaid with the dynamic ones set through AlterConfigs (the quotas).
    let broker_configs = broker.watch_broker_configs().borrow().clone();
    let settings = TierSettings::from_broker_configs(&broker_configs);
    if !settings.enabled {
        info!("remote.log.storage.system.enable=false: no remote tier");
        TieredStorage::install_disabled(log);
        return Ok(None);
    }
    let remote = strata_tiering::RemoteStore::from_url(&config.remote)
        .with_context(|| format!("opening the remote tier {}", config.remote))?;
    let mut tiering =
        TierSettings::tiering_config(&broker_configs, config.data_dir.join("tier-cache"));
    // Raised past the bucket's highest by `TieredStorage::start` (or once the bucket answers).
    tiering.writer_epoch = broker.identity.broker_epoch.max(0) as u64;
    let rlm = strata_tiering::RemoteLogManager::with_remote(remote, tiering)
        .context("starting the remote tier")?;
    let tiered = TieredStorage::start(
        rlm,
        Arc::clone(log),
        broker,
        settings,
        config.data_dir.clone(),
    )
    .await
    .context("starting tiered storage")?;
    Ok(Some(tiered))
}

fn log_manager_config(config: &StrataConfig) -> anyhow::Result<LogManagerConfig> {
    let mut log_config = LogManagerConfig::new(&config.data_dir);
    log_config.broker_defaults = config.broker.clone();
    if let Some(ms) = config.broker_value("log.retention.check.interval.ms") {
        let ms: u64 = ms.parse().context("log.retention.check.interval.ms")?;
        log_config.retention_check_interval = Duration::from_millis(ms);
    }
    Ok(log_config)
}

/// The address clients are told to connect to: `advertised.listeners` (`host:port`, optionally
/// with Kafka's `PLAINTEXT://` prefix), else the Kafka listener's bound address (its real port when
/// `--kafka-listen` asked for port 0). A wildcard bind
/// (0.0.0.0) advertises 127.0.0.1, with a warning, since clients cannot connect to 0.0.0.0.
fn advertised_address(config: &StrataConfig, bound: SocketAddr) -> anyhow::Result<(String, u16)> {
    let configured = config.broker_value("advertised.listeners").unwrap_or("");
    if !configured.is_empty() {
        let first = configured.split(',').next().unwrap_or_default().trim();
        let address = first.rsplit_once("://").map_or(first, |(_, rest)| rest);
        let (host, port) = address.rsplit_once(':').with_context(|| {
            format!("advertised.listeners {configured:?} is not host:port (e.g. PLAINTEXT://broker.example.com:9092)")
        })?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("advertised.listeners {configured:?} has a bad port"))?;
        return Ok((host.trim_matches(['[', ']']).to_string(), port));
    }
    let host = if bound.ip().is_unspecified() {
        warn!(listen = %bound, "the Kafka listener is bound to a wildcard address; advertising 127.0.0.1 (set advertised.listeners for remote clients)");
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    Ok((host, bound.port()))
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Returns at the first SIGTERM or SIGINT, including one received before this call.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
