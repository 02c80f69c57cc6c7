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

/// Key type 0 is a consumer group; 1 (transaction) and 2 (share group) are not served here.
const KEY_TYPE_GROUP: i8 = 0;

pub fn find_coordinator(
    ctx: &BrokerContext,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let error =
        (request.key_type != KEY_TYPE_GROUP).then_some(ResponseError::CoordinatorNotAvailable);
    let (node_id, host, port) = match error {
        None => (
            ctx.node_id(),
            str_bytes(&ctx.advertised_host),
            ctx.advertised_port,
        ),
        Some(_) => (-1, str_bytes(""), -1),
    };
    let error_code = error.map_or(0, |e| e.code());
    let message = error.map(|_| str_bytes("transactions and share groups are not supported"));
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
