//! Fuzzes the Kafka request path: frame bytes -> `codec::decode_request` -> `dispatch` ->
//! `codec::encode_response`, against a real (temporary) log and group coordinator.
//!
//! Run: `cargo +nightly fuzz run kafka_request -s none -- -max_len=4096 -max_total_time=300`
//! (`-s none`: the broker's allocator, jemalloc, stands in for the sanitizer's, as in production.)
#![no_main]

/// The `strata` binary's allocator, so the fuzzer sees what production sees (see `main.rs`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_broker::kafka::codec::{decode_request, encode_response};
use strata_broker::kafka::dispatch::{Dispatched, dispatch};
use strata_broker::kafka::{BrokerContext, BrokerContextParams};
use strata_broker::log::{LogManager, LogManagerConfig};

struct Harness {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<BrokerContext>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = runtime
            .block_on(LogManager::open(LogManagerConfig::new(
                dir.path().join("data"),
            )))
            .unwrap();
        let ctx = BrokerContext::open(BrokerContextParams {
            log,
            state_dir: dir.path().join("data/kafka"),
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            broker_configs: [("auto.create.topics.enable".to_string(), "false".to_string())]
                .into_iter()
                .collect(),
        })
        .unwrap();
        Harness {
            runtime,
            ctx,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let h = harness();
    let peer = "127.0.0.1:1".parse().unwrap();
    let dispatched = h.runtime.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_millis(50),
            dispatch(&h.ctx, &request, peer),
        )
        .await
    });
    if let Ok(Dispatched::Respond(response)) = dispatched {
        encode_response(
            request.correlation_id(),
            request.api_key,
            request.api_version(),
            &response,
        )
        .expect("handlers answer in an encodable shape");
    }
});
