//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs for topic and broker resources.
//!
//! Topic configs belong to the log engine (validated and persisted there). Broker configs are
//! the Kafka-named map the binary handed us; altering them changes the live map in memory only
//! (the config file stays the source of truth across restarts).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::kafka::context::{BrokerContext, DYNAMIC_BROKER_CONFIGS};
use crate::log::{ConfigEntry, ConfigOp, ConfigSource, ConfigType, replace_all_ops};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// DescribeConfigs `config_source` codes for broker resources.
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Broker configs reported even when not set, with Kafka's defaults.
const BROKER_DEFAULTS: &[(&str, &str)] = &[
    ("auto.create.topics.enable", "true"),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("socket.request.max.bytes", "104857600"),
    ("connections.max.idle.ms", "600000"),
    ("fetch.max.bytes", "57671680"),
    ("remote.fetch.max.wait.ms", "500"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
];

fn is_sensitive(key: &str) -> bool {
    ["password", "secret", "credential", "sasl.jaas"]
        .iter()
        .any(|s| key.contains(s))
        || key.ends_with(".key")
}

fn config_type_code(kind: ConfigType) -> i8 {
    // Kafka's ConfigType: BOOLEAN=1, STRING=2, INT=3, SHORT=4, LONG=5, DOUBLE=6, LIST=7.
    match kind {
        ConfigType::Boolean => 1,
        ConfigType::String => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::List => 7,
    }
}

fn wanted(keys: &Option<Vec<StrBytes>>, name: &str) -> bool {
    keys.as_ref()
        .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == name))
}

pub fn describe_configs(
    ctx: &BrokerContext,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let rows: Result<Vec<DescribeConfigsResourceResult>, (i16, String)> =
                match resource.resource_type {
                    RESOURCE_TOPIC => ctx
                        .log
                        .describe_topic_config(&resource.resource_name)
                        .map(|entries| {
                            entries
                                .into_iter()
                                .filter(|e| wanted(&resource.configuration_keys, &e.name))
                                .map(|e| topic_row(&e, request, version))
                                .collect()
                        })
                        .map_err(|e| (e.kafka_error_code(), e.to_string())),
                    RESOURCE_BROKER => check_broker_name(ctx, &resource.resource_name).map(|()| {
                        broker_rows(ctx)
                            .into_iter()
                            .filter(|(k, _, _)| wanted(&resource.configuration_keys, k))
                            .map(|(k, v, source)| broker_row(&k, &v, source, version))
                            .collect()
                    }),
                    other => Err((
                        ResponseError::InvalidRequest.code(),
                        format!("unsupported resource type {other}"),
                    )),
                };
            match rows {
                Ok(rows) => result.with_configs(rows),
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(&message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_row(
    entry: &ConfigEntry,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut row = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(&entry.name))
        .with_value(if entry.sensitive {
            None
        } else {
            entry.value.as_deref().map(str_bytes)
        })
        .with_read_only(entry.read_only)
        .with_is_sensitive(entry.sensitive);
    if version >= 1 {
        row.config_source = entry.source.kafka_code();
    } else {
        // v0 has `is_default` in place of the source; the crate maps it from config_source.
        row.config_source = if entry.source == ConfigSource::Default {
            SOURCE_DEFAULT
        } else {
            -1
        };
    }
    if version >= 3 {
        row.config_type = config_type_code(entry.kind);
        if request.include_documentation {
            row.documentation = Some(str_bytes(&entry.doc));
        }
    }
    row
}

fn broker_row(key: &str, value: &str, source: i8, version: i16) -> DescribeConfigsResourceResult {
    let sensitive = is_sensitive(key);
    let mut row = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(key))
        .with_value(if sensitive {
            None
        } else {
            Some(str_bytes(value))
        })
        .with_is_sensitive(sensitive)
        .with_read_only(!DYNAMIC_BROKER_CONFIGS.contains(&key));
    row.config_source = if version >= 1 || source == SOURCE_DEFAULT {
        source
    } else {
        -1
    };
    row
}

/// Every broker config with its effective value: dynamic overrides, then the static ones, then
/// Kafka defaults for the well-known unset ones.
fn broker_rows(ctx: &BrokerContext) -> Vec<(String, String, i8)> {
    let dynamic = ctx.dynamic_broker_configs();
    let mut rows: Vec<(String, String, i8)> = dynamic
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), SOURCE_DYNAMIC_BROKER))
        .collect();
    rows.extend(
        ctx.static_broker_configs()
            .iter()
            .filter(|(k, _)| !dynamic.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone(), SOURCE_STATIC_BROKER)),
    );
    for (key, default) in BROKER_DEFAULTS {
        if !rows.iter().any(|(k, _, _)| k == key) {
            rows.push(((*key).to_owned(), (*default).to_owned(), SOURCE_DEFAULT));
        }
    }
    rows.sort();
    rows
}

/// A broker resource is named by our node id, or empty for the cluster-wide default.
fn check_broker_name(ctx: &BrokerContext, name: &str) -> Result<(), (i16, String)> {
    if name.is_empty() || name.parse::<i32>().ok() == Some(ctx.node_id()) {
        Ok(())
    } else {
        Err((
            ResponseError::InvalidRequest.code(),
            format!("unknown broker '{name}' (this is node {})", ctx.node_id()),
        ))
    }
}

fn apply_broker_ops(
    ctx: &BrokerContext,
    name: &str,
    ops: Vec<ConfigOp>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    check_broker_name(ctx, name)?;
    for op in &ops {
        let key = match op {
            ConfigOp::Set(key, _) | ConfigOp::Delete(key) => key,
        };
        if !DYNAMIC_BROKER_CONFIGS.contains(&key.as_str()) {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!(
                    "broker config {key} cannot be changed while the broker runs: set it in the \
                     config file (or with --set) and restart; dynamic broker configs: {}",
                    DYNAMIC_BROKER_CONFIGS.join(", ")
                ),
            ));
        }
        if let ConfigOp::Set(key, value) = op {
            crate::config::validate_broker_config(key, value)
                .map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
        }
    }
    if validate_only {
        return Ok(());
    }
    ctx.update_dynamic_broker_configs(|configs| {
        for op in ops {
            match op {
                ConfigOp::Set(k, v) => {
                    tracing::info!(key = %k, value = %v, "dynamic broker config set");
                    configs.insert(k, v);
                }
                ConfigOp::Delete(k) => {
                    tracing::info!(key = %k, "dynamic broker config removed");
                    configs.remove(&k);
                }
            }
        }
    })
    .map_err(|e| (ResponseError::KafkaStorageError.code(), e.to_string()))
}

pub fn alter_configs(ctx: &BrokerContext, request: &AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let replacement: BTreeMap<String, String> = resource
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC => match ctx.log.topic(&resource.resource_name) {
                    Some(topic) => {
                        let ops = replace_all_ops(&topic.overrides, &replacement);
                        check_topic_ops(ctx, &ops).and_then(|()| {
                            ctx.log
                                .alter_topic_config(&topic.name, ops, request.validate_only)
                                .map_err(|e| (e.kafka_error_code(), e.to_string()))
                        })
                    }
                    None => Err((
                        ResponseError::UnknownTopicOrPartition.code(),
                        "unknown topic".to_owned(),
                    )),
                },
                // Kafka's AlterConfigs replaces the whole set of dynamic broker configs.
                RESOURCE_BROKER => apply_broker_ops(
                    ctx,
                    &resource.resource_name,
                    replace_all_ops(&ctx.dynamic_broker_configs(), &replacement),
                    request.validate_only,
                ),
                other => Err((
                    ResponseError::InvalidRequest.code(),
                    format!("unsupported resource type {other}"),
                )),
            };
            let response = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match outcome {
                Ok(()) => response,
                Err((code, message)) => response
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(&message))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub fn incremental_alter_configs(
    ctx: &BrokerContext,
    request: &IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC => incremental_topic_ops(ctx, resource).and_then(|ops| {
                    check_topic_ops(ctx, &ops)?;
                    ctx.log
                        .alter_topic_config(&resource.resource_name, ops, request.validate_only)
                        .map_err(|e| (e.kafka_error_code(), e.to_string()))
                }),
                RESOURCE_BROKER => incremental_broker_ops(ctx, resource)
                    .and_then(|ops| apply_broker_ops(ctx, &resource.resource_name, ops, request.validate_only)),
                other => Err((ResponseError::InvalidRequest.code(), format!("unsupported resource type {other}"))),
            };
            let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match outcome {
                Ok(()) => response,
                Err((code, message)) => {
                    tracing::info!(resource = %resource.resource_name, error = %message, "config change refused");
                    response.with_error_code(code).with_error_message(Some(str_bytes(&message)))
                }
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

type IncrementalResource =
    kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;

/// Turns SET/DELETE/APPEND/SUBTRACT into Set/Delete, resolving list edits against `current`.
fn to_ops(
    resource: &IncrementalResource,
    current: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ConfigOp>, (i16, String)> {
    resource
        .configs
        .iter()
        .map(|c| {
            let key = c.name.to_string();
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            match c.config_operation {
                OP_SET => Ok(ConfigOp::Set(key, value)),
                OP_DELETE => Ok(ConfigOp::Delete(key)),
                OP_APPEND | OP_SUBTRACT => {
                    let mut items: Vec<String> = current(&key)
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if c.config_operation == OP_APPEND {
                            if !items.iter().any(|i| i == item) {
                                items.push(item.to_owned());
                            }
                        } else {
                            items.retain(|i| i != item);
                        }
                    }
                    Ok(ConfigOp::Set(key, items.join(",")))
                }
                other => Err((
                    ResponseError::InvalidRequest.code(),
                    format!("unknown config operation {other}"),
                )),
            }
        })
        .collect()
}

/// The topic config checks that need the broker, not just the configs (see
/// `smt::check_fetch_resolve`).
fn check_topic_ops(ctx: &BrokerContext, ops: &[ConfigOp]) -> Result<(), (i16, String)> {
    let fetch_resolve = ops.iter().find_map(|op| match op {
        ConfigOp::Set(key, value) if key == crate::smt::FETCH_RESOLVE => Some(value.as_str()),
        _ => None,
    });
    crate::smt::check_fetch_resolve(ctx.smt().as_deref(), fetch_resolve)
        .map_err(|e| (e.kafka_error_code(), e.to_string()))
}

fn incremental_topic_ops(
    ctx: &BrokerContext,
    resource: &IncrementalResource,
) -> Result<Vec<ConfigOp>, (i16, String)> {
    let entries = ctx
        .log
        .describe_topic_config(&resource.resource_name)
        .map_err(|e| (e.kafka_error_code(), e.to_string()))?;
    to_ops(resource, |key| {
        entries
            .iter()
            .find(|e| e.name == key)
            .and_then(|e| e.value.clone())
    })
}

fn incremental_broker_ops(
    ctx: &BrokerContext,
    resource: &IncrementalResource,
) -> Result<Vec<ConfigOp>, (i16, String)> {
    to_ops(resource, |key| ctx.broker_config(key))
}
