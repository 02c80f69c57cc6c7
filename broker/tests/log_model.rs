//! Model-based property test: random sequences of appends (both durabilities), reads, rolls
//! (tiny segments), retention, DeleteRecords and restarts (clean and unclean) agree with a simple
//! model: every acknowledged batch not below the log start is readable at its offsets with its
//! bytes, and offsets are dense and increasing.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use strata_broker::log::{Durability, LogManager, LogManagerConfig};
use strata_format::BatchIter;
use strata_format::testing::BatchBuilder;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        size: usize,
        fsync: bool,
    },
    Read {
        at: prop::sample::Index,
        max_bytes: usize,
    },
    Retention,
    DeleteRecords {
        at: prop::sample::Index,
    },
    Restart {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 1usize..300, any::<bool>()).prop_map(|(records, size, fsync)| Op::Append { records, size, fsync }),
        3 => (any::<prop::sample::Index>(), 1usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Retention),
        1 => any::<prop::sample::Index>().prop_map(|at| Op::DeleteRecords { at }),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn log_agrees_with_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        runtime.block_on(async {
            let overrides = BTreeMap::from([
                ("segment.bytes".to_string(), "2000".to_string()),
                ("index.interval.bytes".to_string(), "300".to_string()),
                ("retention.bytes".to_string(), "4000".to_string()),
                ("file.delete.delay.ms".to_string(), "0".to_string()),
            ]);
            let mut manager = LogManager::open(LogManagerConfig::new(dir.path())).await.unwrap();
            manager.create_topic("m", 1, overrides, false).unwrap();
            // Model: base offset -> (last offset, bytes after the base offset field).
            let mut model: BTreeMap<i64, (i64, Bytes)> = BTreeMap::new();
            let mut log_start = 0i64;
            let mut next = 0i64;
            for (step, op) in ops.into_iter().enumerate() {
                let log = manager.partition("m", 0).unwrap();
                match op {
                    Op::Append { records, size, fsync } => {
                        let bytes = BatchBuilder::new().records(records).value(vec![step as u8; size]).build();
                        let durability = if fsync { Durability::Fsync } else { Durability::Written };
                        let result = log.append(bytes.clone(), durability).await.unwrap();
                        assert_eq!(result.base_offset, next, "offsets are dense");
                        assert_eq!(result.last_offset, next + records as i64 - 1);
                        model.insert(next, (result.last_offset, bytes.slice(8..)));
                        next = result.last_offset + 1;
                    }
                    Op::Read { at, max_bytes } => {
                        if next > log_start {
                            let offset = log_start + at.index((next - log_start) as usize) as i64;
                            let read = log.read(offset, max_bytes).unwrap();
                            let first = BatchIter::new(read.records).next().expect("at least one batch");
                            assert!(first.base_offset() <= offset && offset <= first.last_offset());
                        }
                        assert!(log.read(next, max_bytes).unwrap().records.is_empty());
                        assert_eq!(log.read(next + 1, max_bytes).unwrap_err().kafka_error_code(), 1);
                    }
                    Op::Retention => {
                        manager.run_retention_now();
                        assert!(log.log_start_offset() >= log_start);
                        log_start = log.log_start_offset();
                    }
                    Op::DeleteRecords { at } => {
                        let target = log_start + at.index((next - log_start + 1) as usize) as i64;
                        assert_eq!(log.delete_records_before(target).unwrap(), target.max(log_start));
                        log_start = target.max(log_start);
                    }
                    Op::Restart { clean } => {
                        if clean {
                            manager.shutdown().await.unwrap();
                        }
                        drop(log);
                        drop(manager);
                        manager = LogManager::open(LogManagerConfig::new(dir.path())).await.unwrap();
                    }
                }
                // The whole log agrees with the model.
                let log = manager.partition("m", 0).unwrap();
                assert_eq!(log.log_end_offset(), next);
                assert_eq!(log.log_start_offset(), log_start);
                let mut offset = log_start;
                while offset < next {
                    let read = log.read(offset, 4096).unwrap();
                    for stored in BatchIter::new(read.records) {
                        stored.validate().unwrap();
                        let (last, bytes) = &model[&stored.base_offset()];
                        assert_eq!(stored.last_offset(), *last);
                        assert_eq!(&stored.as_bytes()[8..], &bytes[..], "batch at {} changed", stored.base_offset());
                        offset = stored.next_offset();
                    }
                }
            }
        });
    }
}
