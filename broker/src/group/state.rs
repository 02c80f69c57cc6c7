//! One consumer group's membership state machine (the classic rebalance protocol).
//!
//! ```text
//!              join (new member)                all members joined / rebalance timeout
//!   Empty ───────────────────────▶ PreparingRebalance ────────────────────▶ CompletingRebalance
//!     ▲                               ▲      │ (no members left)                    │
//!     │                               │      └──────────▶ Empty                     │ leader's SyncGroup
//!     │  last member leaves / expires │ join with new metadata, leave, expiry       ▼
//!     └───────────────────────────────┴──────────────────────────────────────── Stable
//! ```
//!
//! The state machine is synchronous: every method takes `now` and mutates the group, answering
//! blocked JoinGroup / SyncGroup callers through the oneshot senders stored on their members.
//! The coordinator (`group/mod.rs`) owns the lock and the clock; this file owns the rules, so
//! unit tests drive it with a fake clock.
//!
//! Invariants:
//! - `generation` only grows; a join round that completes always bumps it.
//! - A member with a parked `join_waiter` is exempt from session expiry (it is waiting on us).
//! - Every parked waiter is answered exactly once: on completion, on a new round, or with an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Message};
use tokio::sync::oneshot;

/// Kafka's group state names, as DescribeGroups and ListGroups report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// What a member sent in JoinGroup.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// `(protocol name, member metadata)` in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets MEMBER_ID_REQUIRED and its new id.
    pub require_known_member_id: bool,
}

/// A JoinGroup answer, independent of the wire version.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOutcome {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members: `(member id, group instance id, metadata)`.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinOutcome {
    pub fn error(error: ResponseError, member_id: String) -> Self {
        JoinOutcome {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(error: ResponseError) -> Self {
        SyncOutcome {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A JoinGroup / SyncGroup call either answered now or parked until the round completes.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// Timing knobs, from the broker configs of the same names.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimings {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms`: how long a round started from Empty waits for more members.
    pub initial_rebalance_delay: Duration,
    /// `offsets.retention.minutes`: how long committed offsets outlive their group's members
    /// (see `offsets.rs`).
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    pub offsets_retention_check_interval: Duration,
}

impl Default for GroupTimings {
    fn default() -> Self {
        GroupTimings {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_secs(600),
        }
    }
}

#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline for their re-join.
    pending_members: HashMap<String, Instant>,
    /// While PreparingRebalance: the round completes no earlier than this...
    join_not_before: Instant,
    /// ...and no later than this (members that did not re-join are then removed).
    rebalance_deadline: Instant,
}

impl Group {
    /// The topics this consumer group's members subscribe to, read from their
    /// consumer-protocol metadata for the chosen protocol. `None` when there is no chosen
    /// protocol yet or a member's metadata cannot be read: then, as in Kafka, every topic counts
    /// as subscribed.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for member in self.members.values() {
            let subscription = decode_subscription(member.metadata_for(protocol))?;
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }

    pub fn new(group_id: String, now: Instant) -> Self {
        Group {
            group_id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            join_not_before: now,
            rebalance_deadline: now,
        }
    }

    pub fn join(
        &mut self,
        params: JoinParams,
        now: Instant,
        timings: &GroupTimings,
    ) -> Reply<JoinOutcome> {
        if params.session_timeout < timings.min_session_timeout
            || params.session_timeout > timings.max_session_timeout
        {
            return Reply::Now(JoinOutcome::error(
                ResponseError::InvalidSessionTimeout,
                params.member_id,
            ));
        }
        if params.protocol_type.is_empty()
            || params.protocols.is_empty()
            || !self.accepts_protocols(&params)
        {
            return Reply::Now(JoinOutcome::error(
                ResponseError::InconsistentGroupProtocol,
                params.member_id,
            ));
        }

        if params.member_id.is_empty() {
            let member_id = format!("{}-{}", params.client_id, uuid::Uuid::new_v4());
            if params.require_known_member_id {
                self.pending_members
                    .insert(member_id.clone(), now + params.session_timeout);
                return Reply::Now(JoinOutcome::error(
                    ResponseError::MemberIdRequired,
                    member_id,
                ));
            }
            return self.add_member_and_rebalance(
                JoinParams {
                    member_id,
                    ..params
                },
                now,
                timings,
            );
        }

        if self.pending_members.remove(&params.member_id).is_some() {
            return self.add_member_and_rebalance(params, now, timings);
        }
        let Some(member) = self.members.get_mut(&params.member_id) else {
            return Reply::Now(JoinOutcome::error(
                ResponseError::UnknownMemberId,
                params.member_id,
            ));
        };
        member.last_heartbeat = now;
        let unchanged = member.protocols == params.protocols;
        let is_leader = self.leader.as_deref() == Some(params.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                let (tx, rx) = oneshot::channel();
                let member = self
                    .members
                    .get_mut(&params.member_id)
                    .expect("checked above");
                member.protocols = params.protocols;
                member.session_timeout = params.session_timeout;
                member.rebalance_timeout = params.rebalance_timeout;
                member.join_waiter = Some(tx);
                self.try_complete_join(now);
                Reply::Later(rx)
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if unchanged && !(is_leader && self.state == GroupState::Stable) =>
            {
                // A follower that lost its JoinGroup response: resend the current generation.
                let member_id = params.member_id;
                Reply::Now(self.join_outcome_for(&member_id))
            }
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable => {
                let member_id = params.member_id.clone();
                let (tx, rx) = oneshot::channel();
                let member = self.members.get_mut(&member_id).expect("checked above");
                member.protocols = params.protocols;
                member.join_waiter = Some(tx);
                self.prepare_rebalance(now, timings);
                self.try_complete_join(now);
                Reply::Later(rx)
            }
        }
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncOutcome> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Reply::Now(SyncOutcome::error(ResponseError::UnknownMemberId));
        };
        if generation != self.generation {
            return Reply::Now(SyncOutcome::error(ResponseError::IllegalGeneration));
        }
        match self.state {
            GroupState::Empty => Reply::Now(SyncOutcome::error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => {
                Reply::Now(SyncOutcome::error(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => {
                let assignment = member.assignment.clone();
                Reply::Now(self.sync_outcome(assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.sync_waiter = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in self.members.values_mut() {
                        member.assignment =
                            assignments.remove(&member.member_id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    let outcomes: Vec<_> = self.members.keys().cloned().collect();
                    for id in outcomes {
                        let assignment = self.members[&id].assignment.clone();
                        let outcome = self.sync_outcome(assignment);
                        if let Some(waiter) =
                            self.members.get_mut(&id).and_then(|m| m.sync_waiter.take())
                        {
                            let _ = waiter.send(outcome);
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        member.last_heartbeat = now;
        match self.state {
            GroupState::Empty => Some(ResponseError::UnknownMemberId),
            _ if generation != self.generation => Some(ResponseError::IllegalGeneration),
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        }
    }

    /// Removes one member (LeaveGroup); `UNKNOWN_MEMBER_ID` when it is not in the group.
    pub fn leave(
        &mut self,
        member_id: &str,
        now: Instant,
        timings: &GroupTimings,
    ) -> Option<ResponseError> {
        if self.pending_members.remove(member_id).is_some() {
            self.try_complete_join(now);
            return None;
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(member_id, now, timings);
        None
    }

    /// Whether `member_id` at `generation` may commit offsets now (OffsetCommit rules).
    pub fn validate_commit(&self, member_id: &str, generation: i32) -> Option<ResponseError> {
        if generation < 0 && member_id.is_empty() {
            // A "simple" commit from a client outside group management.
            return if self.members.is_empty() {
                None
            } else {
                Some(ResponseError::IllegalGeneration)
            };
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        match self.state {
            GroupState::CompletingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Periodic work: session expiry, pending-member expiry, rebalance deadlines.
    pub fn tick(&mut self, now: Instant, timings: &GroupTimings) {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.join_waiter.is_none() && now.duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group_id = %self.group_id, %member_id, "member session expired");
            self.remove_member(&member_id, now, timings);
        }
        if self.state == GroupState::PreparingRebalance && now >= self.rebalance_deadline {
            let laggards: Vec<String> = self
                .members
                .values()
                .filter(|m| m.join_waiter.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in laggards {
                tracing::info!(group_id = %self.group_id, %member_id, "member did not re-join in time");
                self.members.remove(&member_id);
            }
            self.pending_members.clear();
        }
        self.try_complete_join(now);
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    fn accepts_protocols(&self, params: &JoinParams) -> bool {
        if self.members.is_empty()
            || (self.members.len() == 1 && self.members.contains_key(&params.member_id))
        {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != params.protocol_type)
        {
            return false;
        }
        self.members
            .values()
            .filter(|m| m.member_id != params.member_id)
            .all(|m| {
                m.protocol_type == params.protocol_type
                    && params
                        .protocols
                        .iter()
                        .any(|(name, _)| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    fn add_member_and_rebalance(
        &mut self,
        params: JoinParams,
        now: Instant,
        timings: &GroupTimings,
    ) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let member = Member {
            member_id: params.member_id.clone(),
            group_instance_id: params.group_instance_id,
            client_id: params.client_id,
            client_host: params.client_host,
            session_timeout: params.session_timeout,
            rebalance_timeout: params.rebalance_timeout,
            protocol_type: params.protocol_type,
            protocols: params.protocols,
            assignment: Bytes::new(),
            last_heartbeat: now,
            join_waiter: Some(tx),
            sync_waiter: None,
        };
        self.members.insert(params.member_id, member);
        self.prepare_rebalance(now, timings);
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    fn remove_member(&mut self, member_id: &str, now: Instant, timings: &GroupTimings) {
        if let Some(mut member) = self.members.remove(member_id) {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinOutcome::error(
                    ResponseError::UnknownMemberId,
                    member_id.to_owned(),
                ));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncOutcome::error(ResponseError::UnknownMemberId));
            }
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, timings)
            }
            GroupState::PreparingRebalance | GroupState::Empty => {}
        }
        self.try_complete_join(now);
    }

    fn prepare_rebalance(&mut self, now: Instant, timings: &GroupTimings) {
        // Members parked in SyncGroup of the old round must re-join.
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
            }
        }
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(60));
        self.join_not_before = if self.state == GroupState::Empty {
            now + timings.initial_rebalance_delay.min(rebalance_timeout)
        } else {
            now
        };
        self.rebalance_deadline = now + rebalance_timeout;
        tracing::info!(group_id = %self.group_id, from = self.state.kafka_name(), generation = self.generation, "preparing rebalance");
        self.state = GroupState::PreparingRebalance;
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.pending_members.is_empty()
            && self.members.values().all(|m| m.join_waiter.is_some());
        let timed_out = now >= self.rebalance_deadline;
        if !(timed_out || (all_joined && now >= self.join_not_before)) {
            return;
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            tracing::info!(group_id = %self.group_id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone());
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        tracing::info!(group_id = %self.group_id, generation = self.generation, members = self.members.len(),
            protocol = ?self.protocol_name, "join round complete");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.join_outcome_for(&id);
            let member = self.members.get_mut(&id).expect("listed above");
            member.last_heartbeat = now;
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(outcome);
            }
        }
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        candidates
            .into_iter()
            .max_by_key(|name| votes.get(name).copied().unwrap_or(0))
            .cloned()
    }

    fn join_outcome_for(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata_for(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    fn sync_outcome(&self, assignment: Bytes) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }
}

/// A consumer-protocol subscription: a version (big-endian i16) and the body. Versions newer
/// than the crate knows are read as the newest it knows, as Kafka's `ConsumerProtocol` does:
/// later versions only append fields.
fn decode_subscription(mut metadata: Bytes) -> Option<ConsumerProtocolSubscription> {
    if metadata.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]);
    if version < 0 {
        return None;
    }
    let version = version.min(ConsumerProtocolSubscription::VERSIONS.max);
    bytes::Buf::advance(&mut metadata, 2);
    ConsumerProtocolSubscription::decode(&mut metadata, version).ok()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
