//! DescribeCluster: one broker, which is also the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::kafka::context::BrokerContext;

pub fn describe_cluster(
    ctx: &BrokerContext,
    _request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(ctx.node_id()))
        .with_host(str_bytes(&ctx.advertised_host))
        .with_port(ctx.advertised_port);
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&ctx.identity.cluster_id))
        .with_controller_id(BrokerId(ctx.node_id()))
        .with_brokers(vec![broker])
}
