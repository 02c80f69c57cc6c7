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
//! Static members (KIP-345, `group.instance.id`) join without the MEMBER_ID_REQUIRED round. A
//! join with a known instance id and no member id is the same consumer restarted: it replaces
//! the registered member and keeps its assignment, without a rebalance when the group is stable.
//! Requests naming that instance with the replaced member id are answered FENCED_INSTANCE_ID. A
//! static member that misses a rebalance keeps its place until its session expires.
//!
//! Invariants:
//! - `generation` only grows; a join round that completes always bumps it.
//! - At most one member per group instance id.
//! - A completed join round's leader is a member that joined that round.
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
    /// JoinGroup v9+: a static leader re-joining a stable group can be told to skip assignment.
    pub supports_skip_assignment: bool,
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
    /// JoinGroup v9+: the leader must not run the assignor (a static leader took its place
    /// back in a stable group, whose assignment stands).
    pub skip_assignment: bool,
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
            skip_assignment: false,
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
    /// Answers this member's parked JoinGroup and SyncGroup calls, if any, with `error`.
    fn dismiss(&mut self, error: ResponseError) {
        if let Some(waiter) = self.join_waiter.take() {
            let _ = waiter.send(JoinOutcome::error(error, self.member_id.clone()));
        }
        if let Some(waiter) = self.sync_waiter.take() {
            let _ = waiter.send(SyncOutcome::error(error));
        }
    }

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

        if let Some(instance) = params.group_instance_id.as_deref() {
            let registered = self.static_member_id(instance).map(str::to_owned);
            if params.member_id.is_empty() {
                // KIP-345: a static member joins without the MEMBER_ID_REQUIRED round; one
                // whose instance id is known takes its old place (and assignment) back.
                let member_id = new_member_id(&params.client_id);
                let params = JoinParams {
                    member_id,
                    ..params
                };
                return match registered {
                    Some(old_member_id) => {
                        self.replace_static_member(&old_member_id, params, now, timings)
                    }
                    None => self.add_member_and_rebalance(params, now, timings),
                };
            }
            if registered.is_some_and(|id| id != params.member_id) {
                return Reply::Now(JoinOutcome::error(
                    ResponseError::FencedInstanceId,
                    params.member_id,
                ));
            }
        }

        if params.member_id.is_empty() {
            let member_id = new_member_id(&params.client_id);
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
        group_instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncOutcome> {
        if self.is_fenced(group_instance_id, member_id) {
            return Reply::Now(SyncOutcome::error(ResponseError::FencedInstanceId));
        }
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
        group_instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if self.is_fenced(group_instance_id, member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
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

    /// Removes one member (LeaveGroup); `UNKNOWN_MEMBER_ID` when it is not in the group. A
    /// static member may be named by its instance id alone (LeaveGroup v3+, an empty member
    /// id); naming it with another member's id is `FENCED_INSTANCE_ID`.
    pub fn leave(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        now: Instant,
        timings: &GroupTimings,
    ) -> Option<ResponseError> {
        if let Some(instance) = group_instance_id {
            let Some(registered) = self.static_member_id(instance).map(str::to_owned) else {
                return Some(ResponseError::UnknownMemberId);
            };
            if !member_id.is_empty() && member_id != registered {
                return Some(ResponseError::FencedInstanceId);
            }
            tracing::info!(group_id = %self.group_id, member_id = %registered, group_instance_id = instance, "static member left");
            self.remove_member(&registered, now, timings);
            return None;
        }
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
    pub fn validate_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        if self.is_fenced(group_instance_id, member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
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
            // Static members keep their place until their session expires (KIP-345): a
            // restarting one comes back to the same assignment.
            let laggards: Vec<String> = self
                .members
                .values()
                .filter(|m| m.join_waiter.is_none() && m.group_instance_id.is_none())
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

    /// The member id of the static member `instance`, if it is in the group.
    fn static_member_id(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.group_instance_id.as_deref() == Some(instance))
            .map(|m| m.member_id.as_str())
    }

    /// A request naming static member `instance` with a member id other than the one that
    /// instance has now comes from a fenced (replaced) process.
    fn is_fenced(&self, instance: Option<&str>, member_id: &str) -> bool {
        instance
            .and_then(|instance| self.static_member_id(instance))
            .is_some_and(|registered| registered != member_id)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// A static member re-joined with no member id (a restarted process): it replaces its old
    /// member, whose parked calls get FENCED_INSTANCE_ID, and keeps its assignment. In a stable
    /// group whose protocol this does not change there is no rebalance (KIP-345): the member
    /// gets the current generation and fetches its assignment with SyncGroup.
    fn replace_static_member(
        &mut self,
        old_member_id: &str,
        params: JoinParams,
        now: Instant,
        timings: &GroupTimings,
    ) -> Reply<JoinOutcome> {
        let mut member = self
            .members
            .remove(old_member_id)
            .expect("the caller found it");
        member.dismiss(ResponseError::FencedInstanceId);
        let new_member_id = params.member_id.clone();
        tracing::info!(group_id = %self.group_id, group_instance_id = ?params.group_instance_id,
            old_member_id, %new_member_id, "static member re-joined");
        member.member_id = new_member_id.clone();
        member.client_id = params.client_id;
        member.client_host = params.client_host;
        member.session_timeout = params.session_timeout;
        member.rebalance_timeout = params.rebalance_timeout;
        member.protocols = params.protocols;
        member.last_heartbeat = now;
        self.members.insert(new_member_id.clone(), member);
        let was_leader = self.leader.as_deref() == Some(old_member_id);
        if was_leader {
            self.leader = Some(new_member_id.clone());
        }

        if self.state == GroupState::Stable
            && self.protocol_name.is_some()
            && self.select_protocol() == self.protocol_name
        {
            let mut outcome = self.join_outcome_for(&new_member_id);
            if was_leader && params.supports_skip_assignment {
                // Told it leads, with the members, but not to assign: the assignment stands.
                outcome.skip_assignment = true;
            } else {
                // Before v9 the old leader id is answered, so the member does not think it
                // leads and run an assignment a stable group would ignore.
                outcome.members.clear();
                if was_leader {
                    outcome.leader = old_member_id.to_owned();
                }
            }
            return Reply::Now(outcome);
        }
        let (tx, rx) = oneshot::channel();
        self.members
            .get_mut(&new_member_id)
            .expect("inserted above")
            .join_waiter = Some(tx);
        // In CompletingRebalance the leader may be assigning to the old member id: start over
        // (a no-op for a round already in preparation).
        self.prepare_rebalance(now, timings);
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    fn remove_member(&mut self, member_id: &str, now: Instant, timings: &GroupTimings) {
        if let Some(mut member) = self.members.remove(member_id) {
            member.dismiss(ResponseError::UnknownMemberId);
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
        let rebalance_timeout = self.max_rebalance_timeout();
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
        if !self.members.is_empty() && self.members.values().all(|m| m.join_waiter.is_none()) {
            // Only static members that have not re-joined are left: nobody could lead the
            // assignment. Wait another round; their sessions expire meanwhile if they are gone.
            let rebalance_timeout = self.max_rebalance_timeout();
            self.rebalance_deadline = now + rebalance_timeout;
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
        // The leader runs the assignment, so it must be a member that joined this round.
        let joined = |id: &String| {
            self.members
                .get(id)
                .is_some_and(|m| m.join_waiter.is_some())
        };
        if !self.leader.as_ref().is_some_and(joined) {
            self.leader = self.members.keys().find(|id| joined(id)).cloned();
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
            skip_assignment: false,
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

/// A member id as Kafka makes them: the client id and a UUID.
fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4())
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
