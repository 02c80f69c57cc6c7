//! Routes a decoded request to its handler and records per-API metrics.

use std::net::SocketAddr;
use std::time::Instant;

use kafka_protocol::messages::{RequestKind, ResponseKind};

use super::codec::DecodedRequest;
use super::context::BrokerContext;
use super::handlers::{
    admin_configs, admin_records, admin_topics, api_versions, cluster, fetch, group_admin,
    group_membership, list_offsets, log_dirs, metadata, offsets, produce, producer_ids,
};
use super::metrics::ApiLabels;

/// What the connection does with a request.
#[derive(Debug)]
pub enum Dispatched {
    Respond(Box<ResponseKind>),
    /// acks=0 Produce: nothing is sent back.
    NoResponse,
    /// The codec accepted a request no handler serves (a bug in the version table): close.
    Unhandled,
}

pub async fn dispatch(
    ctx: &BrokerContext,
    request: &DecodedRequest,
    peer: SocketAddr,
) -> Dispatched {
    let started = Instant::now();
    let version = request.api_version();
    let client_id = request.header.client_id.as_ref().map_or("", |c| c.as_str());
    let client_host = format!("/{}", peer.ip());
    let groups = ctx.groups.as_ref();

    let response = match &request.body {
        RequestKind::ApiVersions(req) => ResponseKind::ApiVersions(api_versions::handle(req)),
        RequestKind::Metadata(req) => ResponseKind::Metadata(metadata::handle(ctx, req, version)),
        RequestKind::Produce(req) => match produce::handle(ctx, req, version).await {
            Some(response) => ResponseKind::Produce(response),
            None => {
                record(ctx, request, started);
                return Dispatched::NoResponse;
            }
        },
        RequestKind::Fetch(req) => ResponseKind::Fetch(fetch::handle(ctx, req, version).await),
        RequestKind::ListOffsets(req) => {
            ResponseKind::ListOffsets(list_offsets::handle(ctx, req, version).await)
        }
        RequestKind::InitProducerId(req) => {
            ResponseKind::InitProducerId(producer_ids::init_producer_id(ctx, req))
        }
        RequestKind::AddPartitionsToTxn(req) => {
            ResponseKind::AddPartitionsToTxn(producer_ids::add_partitions_to_txn(req))
        }
        RequestKind::AddOffsetsToTxn(_) => {
            ResponseKind::AddOffsetsToTxn(producer_ids::add_offsets_to_txn())
        }
        RequestKind::EndTxn(_) => ResponseKind::EndTxn(producer_ids::end_txn()),
        RequestKind::TxnOffsetCommit(req) => {
            ResponseKind::TxnOffsetCommit(producer_ids::txn_offset_commit(req))
        }
        RequestKind::FindCoordinator(req) => {
            ResponseKind::FindCoordinator(group_admin::find_coordinator(ctx, req, version))
        }
        RequestKind::JoinGroup(req) => ResponseKind::JoinGroup(
            group_membership::join_group(groups, req, version, client_id, &client_host).await,
        ),
        RequestKind::SyncGroup(req) => {
            ResponseKind::SyncGroup(group_membership::sync_group(groups, req, version).await)
        }
        RequestKind::Heartbeat(req) => {
            ResponseKind::Heartbeat(group_membership::heartbeat(groups, req))
        }
        RequestKind::LeaveGroup(req) => {
            ResponseKind::LeaveGroup(group_membership::leave_group(groups, req, version))
        }
        RequestKind::OffsetCommit(req) => {
            ResponseKind::OffsetCommit(offsets::offset_commit(ctx, req, version).await)
        }
        RequestKind::OffsetFetch(req) => {
            ResponseKind::OffsetFetch(offsets::offset_fetch(groups, req, version))
        }
        RequestKind::OffsetDelete(req) => {
            ResponseKind::OffsetDelete(offsets::offset_delete(ctx, req).await)
        }
        RequestKind::ListGroups(req) => {
            ResponseKind::ListGroups(group_admin::list_groups(ctx, req, version))
        }
        RequestKind::DescribeGroups(req) => {
            ResponseKind::DescribeGroups(group_admin::describe_groups(ctx, req, version))
        }
        RequestKind::DeleteGroups(req) => {
            ResponseKind::DeleteGroups(group_admin::delete_groups(ctx, req).await)
        }
        RequestKind::CreateTopics(req) => {
            ResponseKind::CreateTopics(admin_topics::create_topics(ctx, req, version))
        }
        RequestKind::DeleteTopics(req) => {
            ResponseKind::DeleteTopics(admin_topics::delete_topics(ctx, req, version).await)
        }
        RequestKind::CreatePartitions(req) => {
            ResponseKind::CreatePartitions(admin_topics::create_partitions(ctx, req))
        }
        RequestKind::DescribeConfigs(req) => {
            ResponseKind::DescribeConfigs(admin_configs::describe_configs(ctx, req, version))
        }
        RequestKind::AlterConfigs(req) => {
            ResponseKind::AlterConfigs(admin_configs::alter_configs(ctx, req))
        }
        RequestKind::IncrementalAlterConfigs(req) => ResponseKind::IncrementalAlterConfigs(
            admin_configs::incremental_alter_configs(ctx, req),
        ),
        RequestKind::DeleteRecords(req) => {
            ResponseKind::DeleteRecords(admin_records::delete_records(ctx, req).await)
        }
        RequestKind::DescribeLogDirs(req) => {
            ResponseKind::DescribeLogDirs(log_dirs::describe_log_dirs(ctx, req))
        }
        RequestKind::DescribeCluster(req) => {
            ResponseKind::DescribeCluster(cluster::describe_cluster(ctx, req))
        }
        _ => {
            tracing::error!(api_key = ?request.api_key, version, "decoded a request no handler serves");
            return Dispatched::Unhandled;
        }
    };
    record(ctx, request, started);
    Dispatched::Respond(Box::new(response))
}

fn record(ctx: &BrokerContext, request: &DecodedRequest, started: Instant) {
    let labels = ApiLabels {
        api: format!("{:?}", request.api_key),
    };
    ctx.metrics.requests.get_or_create(&labels).inc();
    ctx.metrics
        .request_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
}
