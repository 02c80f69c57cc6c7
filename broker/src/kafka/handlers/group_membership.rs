//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup: wire <-> `group::GroupCoordinator`.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};

use super::{code, str_bytes};
use crate::group::{GroupCoordinator, JoinParams};

pub async fn join_group(
    groups: &GroupCoordinator,
    request: &JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let session_timeout = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout = if version >= 1 {
        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
    } else {
        session_timeout
    };
    let params = JoinParams {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        session_timeout,
        rebalance_timeout,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let group_id = request.group_id.to_string();
    if group_id.is_empty() {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::InvalidGroupId.code())
            .with_member_id(request.member_id.clone());
    }
    let outcome = groups.join(&group_id, params).await;
    tracing::debug!(%group_id, member_id = %outcome.member_id, generation = outcome.generation,
        error = ?outcome.error, "join group answered");
    let members = outcome
        .members
        .into_iter()
        .map(|(member_id, instance_id, metadata)| {
            let member = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(&member_id))
                .with_metadata(metadata);
            if version >= 5 {
                member.with_group_instance_id(instance_id.as_deref().map(str_bytes))
            } else {
                member
            }
        })
        .collect();
    let mut response = JoinGroupResponse::default()
        .with_error_code(code(outcome.error))
        .with_generation_id(outcome.generation)
        .with_leader(str_bytes(&outcome.leader))
        .with_member_id(str_bytes(&outcome.member_id))
        .with_members(members);
    if version >= 9 {
        response.skip_assignment = outcome.skip_assignment;
    }
    if version >= 7 {
        response.protocol_type = outcome.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = outcome.protocol_name.as_deref().map(str_bytes);
    } else {
        response.protocol_name = Some(str_bytes(
            outcome.protocol_name.as_deref().unwrap_or_default(),
        ));
    }
    response
}

pub async fn sync_group(
    groups: &GroupCoordinator,
    request: &SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let outcome = groups
        .sync(
            &request.group_id,
            request.member_id.as_str(),
            request.group_instance_id.as_deref(),
            request.generation_id,
            assignments,
        )
        .await;
    let mut response = SyncGroupResponse::default()
        .with_error_code(code(outcome.error))
        .with_assignment(outcome.assignment);
    if version >= 5 {
        response.protocol_type = outcome.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = outcome.protocol_name.as_deref().map(str_bytes);
    }
    response
}

pub fn heartbeat(groups: &GroupCoordinator, request: &HeartbeatRequest) -> HeartbeatResponse {
    let error = groups.heartbeat(
        &request.group_id,
        request.member_id.as_str(),
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code(error))
}

pub fn leave_group(
    groups: &GroupCoordinator,
    request: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    if version < 3 {
        let error = groups.leave(&request.group_id, request.member_id.as_str(), None);
        return LeaveGroupResponse::default().with_error_code(code(error));
    }
    let members = request
        .members
        .iter()
        .map(|member| {
            let error = groups.leave(
                &request.group_id,
                member.member_id.as_str(),
                member.group_instance_id.as_deref(),
            );
            MemberResponse::default()
                .with_member_id(member.member_id.clone())
                .with_group_instance_id(member.group_instance_id.clone())
                .with_error_code(code(error))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
