//! Property tests of the pure transforms: chains of InsertHeader / DropHeaders / Filter guarded
//! by predicates agree with a small model interpreter, and a chain's configuration survives
//! a round trip through properties text.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use strata_connect_smt::{
    ConnectRecord, TransformChain, TransformContext, parse_properties, write_properties,
};

/// Topic patterns with a hand-written meaning, so the model does not use the regex engine.
/// A regex and the plain-Rust meaning of "the whole topic matches it".
type TopicPattern = (&'static str, fn(&str) -> bool);

const TOPIC_PATTERNS: [TopicPattern; 4] = [
    ("a.*", |t| t.starts_with('a')),
    ("b", |t| t == "b"),
    ("[ab]c?", |t| matches!(t, "a" | "b" | "ac" | "bc")),
    ("a\\.b|c", |t| matches!(t, "a.b" | "c")),
];
const TOPICS: [&str; 6] = ["a", "ab", "b", "bc", "c", "a.b"];
const HEADER_NAMES: [&str; 3] = ["h1", "h2", "h.3"];

#[derive(Debug, Clone)]
enum PredicateSpec {
    Topic(usize),
    HasHeader(&'static str),
    Tombstone,
}

#[derive(Debug, Clone)]
enum StageSpec {
    Insert(&'static str, String),
    Drop(Vec<&'static str>),
    Filter,
}

/// (transform, predicate index and negate, how the type name is spelled: short, Kafka, strata)
type GuardedStage = (StageSpec, Option<(usize, bool)>, u8);

#[derive(Debug, Clone)]
struct ChainSpec {
    predicates: Vec<PredicateSpec>,
    stages: Vec<GuardedStage>,
}

fn header_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(HEADER_NAMES.to_vec())
}

fn predicate_spec() -> impl Strategy<Value = PredicateSpec> {
    prop_oneof![
        (0..TOPIC_PATTERNS.len()).prop_map(PredicateSpec::Topic),
        header_name().prop_map(PredicateSpec::HasHeader),
        Just(PredicateSpec::Tombstone),
    ]
}

fn stage_spec() -> impl Strategy<Value = StageSpec> {
    prop_oneof![
        3 => (header_name(), "[a-z =:#\\\\]{0,6}").prop_map(|(h, v)| StageSpec::Insert(h, v)),
        3 => prop::collection::vec(header_name(), 1..3).prop_map(StageSpec::Drop),
        1 => Just(StageSpec::Filter),
    ]
}

fn chain_spec() -> impl Strategy<Value = ChainSpec> {
    prop::collection::vec(predicate_spec(), 0..4).prop_flat_map(|predicates| {
        let n = predicates.len();
        let guard = if n == 0 {
            Just(None).boxed()
        } else {
            prop::option::of((0..n, any::<bool>())).boxed()
        };
        let stages = prop::collection::vec((stage_spec(), guard, 0u8..3), 0..6);
        (Just(predicates), stages).prop_map(|(predicates, stages)| ChainSpec { predicates, stages })
    })
}

fn record() -> impl Strategy<Value = ConnectRecord> {
    let header = (
        header_name(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
    );
    (
        prop::sample::select(TOPICS.to_vec()),
        prop::option::of(0i32..8),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        prop::collection::vec(header, 0..5),
        any::<i64>(),
    )
        .prop_map(
            |(topic, partition, key, value, headers, timestamp)| ConnectRecord {
                topic: topic.to_string(),
                partition,
                key: key.map(Bytes::from),
                value: value.map(Bytes::from),
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v.map(Bytes::from)))
                    .collect(),
                timestamp,
            },
        )
}

impl ChainSpec {
    fn to_properties(&self) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        let mut set = |k: String, v: String| {
            p.insert(k, v);
        };
        let aliases: Vec<String> = (0..self.stages.len()).map(|i| format!("t{i}")).collect();
        set("transforms".into(), aliases.join(","));
        let pred_aliases: Vec<String> = (0..self.predicates.len())
            .map(|i| format!("p{i}"))
            .collect();
        set("predicates".into(), pred_aliases.join(", "));
        for (i, pred) in self.predicates.iter().enumerate() {
            let k = |s: &str| format!("predicates.p{i}.{s}");
            match pred {
                PredicateSpec::Topic(j) => {
                    set(k("type"), "TopicNameMatches".into());
                    set(k("pattern"), TOPIC_PATTERNS[*j].0.into());
                }
                PredicateSpec::HasHeader(h) => {
                    set(
                        k("type"),
                        "org.apache.kafka.connect.transforms.predicates.HasHeaderKey".into(),
                    );
                    set(k("name"), h.to_string());
                }
                PredicateSpec::Tombstone => set(k("type"), "strata.RecordIsTombstone".into()),
            }
        }
        for (i, (stage, guard, style)) in self.stages.iter().enumerate() {
            let k = |s: &str| format!("transforms.t{i}.{s}");
            let ty = |short: &str| match style {
                0 => short.to_string(),
                1 => format!("org.apache.kafka.connect.transforms.{short}"),
                _ => format!("strata.{short}"),
            };
            match stage {
                StageSpec::Insert(h, v) => {
                    set(k("type"), ty("InsertHeader"));
                    set(k("header"), h.to_string());
                    set(k("value.literal"), v.clone());
                }
                StageSpec::Drop(names) => {
                    set(k("type"), ty("DropHeaders"));
                    set(k("headers"), names.join(" , "));
                }
                StageSpec::Filter => set(k("type"), ty("Filter")),
            }
            if let Some((j, negate)) = guard {
                set(k("predicate"), format!("p{j}"));
                set(k("negate"), negate.to_string());
            }
        }
        p
    }

    /// The model: what the chain must do, written as plainly as possible.
    fn run_model(&self, mut rec: ConnectRecord) -> Option<ConnectRecord> {
        for (stage, guard, _) in &self.stages {
            if let Some((j, negate)) = guard {
                let holds = match &self.predicates[*j] {
                    PredicateSpec::Topic(p) => (TOPIC_PATTERNS[*p].1)(&rec.topic),
                    PredicateSpec::HasHeader(h) => rec.headers.iter().any(|(n, _)| n == h),
                    PredicateSpec::Tombstone => rec.value.is_none(),
                };
                if holds == *negate {
                    continue;
                }
            }
            match stage {
                StageSpec::Insert(h, v) => rec
                    .headers
                    .push((h.to_string(), Some(Bytes::from(v.clone())))),
                StageSpec::Drop(names) => rec.headers.retain(|(n, _)| !names.contains(&n.as_str())),
                StageSpec::Filter => return None,
            }
        }
        Some(rec)
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #[test]
    fn chain_agrees_with_model(spec in chain_spec(), records in prop::collection::vec(record(), 1..8)) {
        let chain = TransformChain::from_properties(&spec.to_properties(), &TransformContext::default()).unwrap();
        prop_assert_eq!(chain.len(), spec.stages.len());
        for rec in records {
            let got = block_on(chain.apply(rec.clone())).unwrap();
            prop_assert_eq!(got, spec.run_model(rec));
        }
    }

    #[test]
    fn config_round_trips_through_properties_text(spec in chain_spec(), records in prop::collection::vec(record(), 1..4)) {
        let ctx = TransformContext::default();
        let chain = TransformChain::from_properties(&spec.to_properties(), &ctx).unwrap();
        let normalized = chain.to_properties();
        let text = write_properties(&normalized);
        let reparsed = parse_properties(&text).unwrap();
        prop_assert_eq!(&reparsed, &normalized);
        let rebuilt = TransformChain::from_properties(&reparsed, &ctx).unwrap();
        prop_assert_eq!(rebuilt.to_properties(), normalized);
        for rec in records {
            prop_assert_eq!(block_on(rebuilt.apply(rec.clone())).unwrap(), block_on(chain.apply(rec)).unwrap());
        }
    }
}
