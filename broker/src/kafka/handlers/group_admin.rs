//! FindCoordinator, ListGroups, DescribeGroups, DeleteGroups.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest,
    ListGroupsResponse,
};

use super::str_bytes;
use crate::kafka::context::BrokerContext;

/// Key type 0 is a consumer group, 1 a transactional id; 2 (share group) is not served.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// This broker coordinates every group, and answers for transactional ids too although it has
/// no transactions: a transactional producer must reach InitProducerId to be refused for good
/// (`producer_ids.rs`); COORDINATOR_NOT_AVAILABLE is retriable and made clients retry until
/// their timeout.
pub fn find_coordinator(
    ctx: &BrokerContext,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let error = (![KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION].contains(&request.key_type))
        .then_some(ResponseError::CoordinatorNotAvailable);
    let (node_id, host, port) = match error {
        None => (
            ctx.node_id(),
            str_bytes(&ctx.advertised_host),
            ctx.advertised_port,
        ),
        Some(_) => (-1, str_bytes(""), -1),
    };
    let error_code = error.map_or(0, |e| e.code());
    let message = error.map(|_| str_bytes("share groups are not supported"));
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node_id))
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(error_code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default()
        .with_error_code(error_code)
        .with_node_id(BrokerId(node_id))
        .with_host(host)
        .with_port(port);
    if version >= 1 {
        response.with_error_message(message)
    } else {
        response
    }
}

pub fn list_groups(
    ctx: &BrokerContext,
    request: &ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let groups = ctx
        .groups
        .list_groups()
        .into_iter()
        .filter(|g| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(g.state))
        })
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(str_bytes(&g.group_id).into())
                .with_protocol_type(str_bytes(&g.protocol_type));
            if version >= 4 {
                listed.with_group_state(str_bytes(g.state))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub fn describe_groups(
    ctx: &BrokerContext,
    request: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .iter()
        .map(|group_id| match ctx.groups.describe_group(group_id) {
            Some(description) => {
                let members = description
                    .members
                    .into_iter()
                    .map(|m| {
                        let member = DescribedGroupMember::default()
                            .with_member_id(str_bytes(&m.member_id))
                            .with_client_id(str_bytes(&m.client_id))
                            .with_client_host(str_bytes(&m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment);
                        if version >= 4 {
                            member.with_group_instance_id(
                                m.group_instance_id.as_deref().map(str_bytes),
                            )
                        } else {
                            member
                        }
                    })
                    .collect();
                DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_group_state(str_bytes(description.state))
                    .with_protocol_type(str_bytes(&description.protocol_type))
                    .with_protocol_data(str_bytes(&description.protocol_name))
                    .with_members(members)
            }
            // Kafka answers an unknown group as a "Dead" group with no error.
            None => DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_group_state(str_bytes("Dead")),
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete_groups(
    ctx: &BrokerContext,
    request: &DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in &request.groups_names {
        let error = ctx.groups.delete_group(group_id).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id.clone())
                .with_error_code(error.map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::InitProducerIdRequest;

    use super::*;
    use crate::kafka::handlers::producer_ids::init_producer_id;
    use crate::kafka::test_support::TestBroker;

    fn find(key_type: i8, version: i16, ctx: &BrokerContext) -> (i16, i32, String, i32) {
        let request = FindCoordinatorRequest::default()
            .with_key(str_bytes("tx-1"))
            .with_key_type(key_type)
            .with_coordinator_keys(vec![str_bytes("tx-1")]);
        let response = find_coordinator(ctx, &request, version);
        if version >= 4 {
            let [c] = &response.coordinators[..] else {
                panic!("one coordinator per key: {response:?}")
            };
            (c.error_code, c.node_id.0, c.host.to_string(), c.port)
        } else {
            let r = response;
            (r.error_code, r.node_id.0, r.host.to_string(), r.port)
        }
    }

    #[tokio::test]
    async fn transactional_ids_find_this_broker_and_are_refused_for_good_at_init() {
        let broker = TestBroker::start(&[("node.id", "7")]).await;
        let ctx = &broker.ctx;
        let this_broker = (0, 7, "127.0.0.1".to_string(), i32::from(broker.addr.port()));
        for version in [1, 3, 4] {
            assert_eq!(
                find(1, version, ctx),
                this_broker,
                "transaction, v{version}"
            );
            assert_eq!(find(0, version, ctx), this_broker, "group, v{version}");
        }
        // Share groups stay unserved.
        assert_eq!(
            find(2, 4, ctx).0,
            ResponseError::CoordinatorNotAvailable.code()
        );

        let transactional =
            InitProducerIdRequest::default().with_transactional_id(Some(str_bytes("tx-1").into()));
        let refused = init_producer_id(ctx, &transactional);
        assert_eq!(
            refused.error_code,
            ResponseError::TransactionalIdAuthorizationFailed.code()
        );
        assert_eq!(refused.producer_id.0, -1);
        let idempotent = init_producer_id(ctx, &InitProducerIdRequest::default());
        assert_eq!(idempotent.error_code, 0);
        assert!(idempotent.producer_id.0 >= 0);
        broker.stop().await;
    }
}
