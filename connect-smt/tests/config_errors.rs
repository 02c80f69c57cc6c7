//! Every configuration mistake is rejected, and the error names the offending property key.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::memory::InMemory;
use strata_claimcheck::{ClaimCheckConfig, ClaimStore};
use strata_connect_smt::{ConfigError, ConfigErrorKind, TransformChain, TransformContext};

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn store_ctx() -> TransformContext {
    let store = ClaimStore::new(Arc::new(InMemory::new()), "smt").unwrap();
    TransformContext::with_claim_store(store, ClaimCheckConfig::default())
}

fn build_err(pairs: &[(&str, &str)]) -> ConfigError {
    TransformChain::from_properties(&props(pairs), &store_ctx()).unwrap_err()
}

/// (properties, the key the error must name, the kind of mistake)
type MistakeCase = (
    Vec<(&'static str, &'static str)>,
    &'static str,
    ConfigErrorKind,
);

#[test]
fn each_mistake_names_its_key() {
    let cases: Vec<MistakeCase> = vec![
        // type problems
        (
            vec![("transforms", "a")],
            "transforms.a.type",
            ConfigErrorKind::Missing,
        ),
        (
            vec![("transforms", "a"), ("transforms.a.type", "Nope")],
            "transforms.a.type",
            ConfigErrorKind::Unknown,
        ),
        (
            vec![
                ("transforms", "a"),
                (
                    "transforms.a.type",
                    "org.apache.kafka.connect.transforms.ClaimCheck",
                ),
            ],
            "transforms.a.type",
            ConfigErrorKind::Unknown,
        ),
        (
            vec![("predicates", "p"), ("predicates.p.type", "IsBig")],
            "predicates.p.type",
            ConfigErrorKind::Unknown,
        ),
        // missing settings
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "InsertHeader"),
                ("transforms.a.value.literal", "v"),
            ],
            "transforms.a.header",
            ConfigErrorKind::Missing,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "InsertHeader"),
                ("transforms.a.header", "h"),
            ],
            "transforms.a.value.literal",
            ConfigErrorKind::Missing,
        ),
        (
            vec![("transforms", "a"), ("transforms.a.type", "DropHeaders")],
            "transforms.a.headers",
            ConfigErrorKind::Missing,
        ),
        (
            vec![
                ("predicates", "p"),
                ("predicates.p.type", "TopicNameMatches"),
            ],
            "predicates.p.pattern",
            ConfigErrorKind::Missing,
        ),
        (
            vec![("predicates", "p"), ("predicates.p.type", "HasHeaderKey")],
            "predicates.p.name",
            ConfigErrorKind::Missing,
        ),
        // invalid values
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "ClaimCheck"),
                ("transforms.a.threshold.bytes", "1MB"),
            ],
            "transforms.a.threshold.bytes",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "ClaimCheck"),
                ("transforms.a.field", "headers"),
            ],
            "transforms.a.field",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "ClaimCheck"),
                ("transforms.a.content.type", " "),
            ],
            "transforms.a.content.type",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "ClaimCheckResolve"),
                ("transforms.a.max.bytes", "-5"),
            ],
            "transforms.a.max.bytes",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "DropHeaders"),
                ("transforms.a.headers", "x,,y"),
            ],
            "transforms.a.headers",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("predicates", "p"),
                ("predicates.p.type", "TopicNameMatches"),
                ("predicates.p.pattern", "("),
            ],
            "predicates.p.pattern",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.predicate", "p"),
                ("transforms.a.negate", "maybe"),
                ("predicates", "p"),
                ("predicates.p.type", "RecordIsTombstone"),
            ],
            "transforms.a.negate",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.negate", "true"),
            ],
            "transforms.a.negate",
            ConfigErrorKind::Invalid,
        ),
        (
            vec![("transforms", "a,b,a")],
            "transforms",
            ConfigErrorKind::Invalid,
        ),
        // unknown settings, aliases, predicates
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.threshold", "1"),
            ],
            "transforms.a.threshold",
            ConfigErrorKind::Unknown,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "ClaimCheck"),
                ("transforms.a.threshold", "1"),
            ],
            "transforms.a.threshold",
            ConfigErrorKind::Unknown,
        ),
        (
            vec![
                ("predicates", "p"),
                ("predicates.p.type", "RecordIsTombstone"),
                ("predicates.p.negate", "true"),
            ],
            "predicates.p.negate",
            ConfigErrorKind::Unknown,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.b.type", "Filter"),
            ],
            "transforms.b.type",
            ConfigErrorKind::Unknown,
        ),
        (
            vec![
                ("transforms", "a"),
                ("transforms.a.type", "Filter"),
                ("transforms.a.predicate", "p"),
            ],
            "transforms.a.predicate",
            ConfigErrorKind::Unknown,
        ),
    ];
    for (pairs, key, kind) in cases {
        let err = build_err(&pairs);
        assert_eq!(err.key(), key, "{pairs:?}: {err}");
        assert_eq!(err.kind(), kind, "{pairs:?}: {err}");
        assert!(
            err.to_string().contains(key),
            "message must name {key}: {err}"
        );
    }
}

#[test]
fn claim_check_without_a_store_names_the_type_key() {
    for ty in ["ClaimCheck", "strata.ClaimCheckResolve"] {
        let p = props(&[("transforms", "cc"), ("transforms.cc.type", ty)]);
        let err = TransformChain::from_properties(&p, &TransformContext::default()).unwrap_err();
        assert_eq!(err.key(), "transforms.cc.type");
        assert_eq!(err.kind(), ConfigErrorKind::Unavailable);
    }
}

#[test]
fn unknown_setting_lists_the_known_ones() {
    let err = build_err(&[
        ("transforms", "a"),
        ("transforms.a.type", "InsertHeader"),
        ("transforms.a.header", "h"),
        ("transforms.a.value.literal", "v"),
        ("transforms.a.value", "oops"),
    ]);
    let message = err.to_string();
    assert!(message.contains("transforms.a.value.literal"), "{message}");
}

#[test]
fn accepts_every_type_name_style_and_ignores_foreign_keys() {
    let text = r"
        # a connector file: only transforms.* and predicates.* are ours
        name=my-sink
        connector.class=FileStreamSink
        transforms=cc, tag ,drop,f
        transforms.cc.type=strata.ClaimCheck
        transforms.tag.type=org.apache.kafka.connect.transforms.InsertHeader
        transforms.tag.header=origin
        transforms.tag.value.literal=strata
        transforms.drop.type=org.apache.kafka.connect.transforms.DropHeaders
        transforms.drop.headers=a, b
        transforms.f.type=org.apache.kafka.connect.transforms.Filter
        transforms.f.predicate=isTomb
        transforms.f.negate=FALSE
        predicates=isTomb,orders
        predicates.isTomb.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone
        predicates.orders.type=TopicNameMatches
        predicates.orders.pattern=orders\\..*
    ";
    let chain = TransformChain::from_properties_text(text, &store_ctx()).unwrap();
    assert_eq!(
        chain.aliases().collect::<Vec<_>>(),
        ["cc", "tag", "drop", "f"]
    );
    let normalized = chain.to_properties();
    assert_eq!(normalized["transforms.cc.type"], "ClaimCheck");
    assert_eq!(normalized["transforms.cc.threshold.bytes"], "1048576");
    assert_eq!(normalized["transforms.drop.headers"], "a,b");
    assert_eq!(normalized["transforms.f.negate"], "false");
    assert_eq!(normalized["predicates.orders.pattern"], "orders\\..*");
    assert!(!normalized.contains_key("name"));
}

#[test]
fn empty_transforms_is_an_empty_chain() {
    let chain = TransformChain::from_properties(
        &props(&[("transforms", "")]),
        &TransformContext::default(),
    )
    .unwrap();
    assert!(chain.is_empty());
    let chain =
        TransformChain::from_properties(&BTreeMap::new(), &TransformContext::default()).unwrap();
    assert!(chain.is_empty());
    assert!(chain.to_properties().is_empty());
}

/// The examples in `docs/transforms.md` build as written; those that declare a chain build a
/// non-empty one (the `strata connect` runner example declares none).
#[test]
fn documented_examples_build() {
    let doc = include_str!("../../docs/transforms.md");
    let blocks: Vec<&str> = doc
        .split("```properties\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2);
    for block in blocks {
        let chain = TransformChain::from_properties_text(block, &store_ctx())
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        let declares_chain = block
            .lines()
            .any(|l| l.trim_start().starts_with("transforms="));
        assert_eq!(!chain.is_empty(), declares_chain, "{block}");
    }
    let first = TransformChain::from_properties_text(
        doc.split("```properties\n").nth(1).unwrap(),
        &store_ctx(),
    )
    .unwrap();
    assert_eq!(
        first.to_properties()["predicates.isAudit.pattern"],
        "audit\\..*"
    );
}
