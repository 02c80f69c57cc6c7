//! An in-process broker on a loopback port, for tests of the protocol server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::context::{BrokerContext, BrokerContextParams};
use crate::log::{LogManager, LogManagerConfig};

pub struct TestBroker {
    pub addr: SocketAddr,
    pub ctx: Arc<BrokerContext>,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub _dir: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start(configs: &[(&str, &str)]) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let log = LogManager::open(LogManagerConfig::new(dir.path().join("data")))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut broker_configs: BTreeMap<String, String> =
            [("group.initial.rebalance.delay.ms", "0")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        broker_configs.extend(configs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let ctx = BrokerContext::open(BrokerContextParams {
            log,
            state_dir: dir.path().join("data").join("kafka"),
            advertised_host: "127.0.0.1".into(),
            advertised_port: addr.port(),
            broker_configs,
        })
        .unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(super::serve(listener, Arc::clone(&ctx), shutdown.clone()));
        TestBroker {
            addr,
            ctx,
            shutdown,
            server,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        let _ = self.ctx.log.shutdown().await;
    }
}
