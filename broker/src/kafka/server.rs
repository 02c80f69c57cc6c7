//! The accept loop: one tokio task per connection, graceful stop on the shutdown token.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::connection::{Closed, serve_connection};
use super::context::BrokerContext;

/// How long open connections get to finish their current request after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the Kafka protocol on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<BrokerContext>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, advertised_host = %ctx.advertised_host, advertised_port = ctx.advertised_port,
        node_id = ctx.node_id(), "kafka listener ready");
    let expiry = tokio::spawn(Arc::clone(&ctx.groups).run_expiry(shutdown.clone()));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        ctx.metrics.connections_accepted.inc();
        let ctx = Arc::clone(&ctx);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            ctx.metrics.connections_open.inc();
            tracing::debug!(%peer, "connection opened");
            let closed = serve_connection(stream, peer, Arc::clone(&ctx), shutdown).await;
            ctx.metrics.connections_open.dec();
            match closed {
                Closed::ClientClosed | Closed::Shutdown => tracing::debug!(%peer, "connection closed"),
                Closed::Idle => tracing::info!(%peer, "idle connection closed"),
                Closed::WriteStalled => tracing::info!(%peer, "closing connection: the client stopped reading its response"),
                Closed::Io(e) => tracing::debug!(%peer, error = %e, "connection I/O error"),
                Closed::BadFrame(e) => tracing::warn!(%peer, error = %e, "closing connection: bad frame"),
                Closed::BadRequest(e) => tracing::warn!(%peer, error = %e, "closing connection: bad request"),
                Closed::EncodeFailed(e) => tracing::error!(%peer, error = %e, "closing connection: response encoding failed"),
            }
        });
    }
    tracing::info!(open = connections.len(), "kafka listener stopping");
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    let _ = expiry.await;
    Ok(())
}
