//! The consumer group coordinator (classic protocol) and the committed-offsets store.
//!
//! This broker is the coordinator of every group. Each group's membership is a synchronous
//! state machine ([`state::Group`]) behind one mutex that is never held across an `.await`:
//! JoinGroup and SyncGroup calls that must wait for the rest of the group park a oneshot sender
//! on their member and await the receiver outside the lock. A background task
//! ([`GroupCoordinator::run_expiry`]) ticks every 100 ms to expire sessions, pending member ids
//! and rebalance deadlines, records groups gaining their first or losing their last member, and
//! every `offsets.retention.check.interval.ms` removes expired committed offsets.
//!
//! Committed offsets are durable before OffsetCommit is answered; see [`offsets`].

pub mod offsets;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio_util::sync::CancellationToken;

pub use offsets::{CommittedOffset, ExpiredOffset, Membership, OffsetStore, OffsetStoreError};
pub use state::{GroupState, GroupTimings, JoinOutcome, JoinParams, Reply, SyncOutcome};

use state::Group;

const EXPIRY_TICK: Duration = Duration::from_millis(100);

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
}

pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    offsets: OffsetStore,
    timings: GroupTimings,
}

impl GroupCoordinator {
    /// Opens the coordinator, replaying committed offsets from `state_dir`.
    pub fn open(state_dir: &Path, timings: GroupTimings) -> Result<Arc<Self>, OffsetStoreError> {
        Ok(Arc::new(GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            offsets: OffsetStore::open(state_dir)?,
            timings,
        }))
    }

    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    /// Session expiry, rebalance deadlines and offset expiry; runs until `shutdown`.
    pub async fn run_expiry(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(EXPIRY_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retention_check =
            tokio::time::interval(self.timings.offsets_retention_check_interval);
        retention_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => self.tick().await,
                _ = retention_check.tick() => self.expire_offsets().await,
            }
        }
    }

    async fn tick(&self) {
        let memberships: Vec<(String, Membership)> = {
            let now = Instant::now();
            let now_ms = crate::log::now_ms();
            let mut groups = self.groups.lock().expect("groups lock");
            for group in groups.values_mut() {
                group.tick(now, &self.timings);
            }
            let memberships = groups
                .values()
                .map(|g| {
                    let membership = if g.members.is_empty() {
                        Membership::EmptySince(now_ms)
                    } else {
                        Membership::Active
                    };
                    (g.group_id.clone(), membership)
                })
                .collect();
            groups.retain(|_, g| !(g.state == GroupState::Empty && g.is_empty()));
            memberships
        };
        // Journaled only when it changes (see `OffsetStore::set_membership`).
        for (group_id, membership) in memberships {
            if let Err(error) = self.offsets.set_membership(&group_id, membership).await {
                tracing::error!(group_id, %error, "recording group membership for offset expiry failed");
            }
        }
    }

    /// Removes committed offsets that `offsets.retention.minutes` has expired.
    async fn expire_offsets(&self) {
        let active: HashSet<String> = {
            let groups = self.groups.lock().expect("groups lock");
            groups
                .values()
                .filter(|g| !g.members.is_empty())
                .map(|g| g.group_id.clone())
                .collect()
        };
        match self
            .offsets
            .expire(
                crate::log::now_ms(),
                self.timings.offsets_retention,
                &active,
            )
            .await
        {
            Ok(expired) if !expired.is_empty() => {
                let groups: HashSet<&str> = expired.iter().map(|e| e.group.as_str()).collect();
                tracing::info!(
                    offsets = expired.len(),
                    groups = groups.len(),
                    retention_minutes = self.timings.offsets_retention.as_secs() / 60,
                    "removed expired committed offsets (offsets.retention.minutes)"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "expiring committed offsets failed"),
        }
    }

    pub async fn join(&self, group_id: &str, params: JoinParams) -> JoinOutcome {
        let member_id = params.member_id.clone();
        let reply = {
            let mut groups = self.groups.lock().expect("groups lock");
            let now = Instant::now();
            let group = groups
                .entry(group_id.to_owned())
                .or_insert_with(|| Group::new(group_id.to_owned(), now));
            group.join(params, now, &self.timings)
        };
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| {
                JoinOutcome::error(ResponseError::CoordinatorNotAvailable, member_id)
            }),
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        let reply = {
            let mut groups = self.groups.lock().expect("groups lock");
            match groups.get_mut(group_id) {
                Some(group) => group.sync(member_id, group_instance_id, generation, assignments),
                None => Reply::Now(SyncOutcome::error(ResponseError::UnknownMemberId)),
            }
        };
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(rx) => rx
                .await
                .unwrap_or_else(|_| SyncOutcome::error(ResponseError::CoordinatorNotAvailable)),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        let mut groups = self.groups.lock().expect("groups lock");
        match groups.get_mut(group_id) {
            Some(group) => {
                group.heartbeat(member_id, group_instance_id, generation, Instant::now())
            }
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    pub fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Option<ResponseError> {
        let mut groups = self.groups.lock().expect("groups lock");
        match groups.get_mut(group_id) {
            Some(group) => group.leave(member_id, group_instance_id, Instant::now(), &self.timings),
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    /// Validates the committer's membership, then durably stores the offsets of the partitions
    /// for which `exists(topic, partition)` holds when they are journaled; returns the others.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
        commits: Vec<(String, i32, CommittedOffset)>,
        exists: impl Fn(&str, i32) -> bool,
    ) -> Result<Vec<(String, i32)>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        {
            let groups = self.groups.lock().expect("groups lock");
            let verdict = match groups.get(group_id) {
                Some(group) => group.validate_commit(member_id, group_instance_id, generation),
                None if generation < 0 => None,
                None => Some(ResponseError::UnknownMemberId),
            };
            if let Some(error) = verdict {
                return Err(error);
            }
        }
        self.offsets
            .commit_existing(group_id, commits, exists)
            .await
            .map_err(|err| {
                tracing::error!(group_id, error = %err, "offset commit failed");
                ResponseError::UnknownServerError
            })
    }

    /// Durably removes every group's committed offsets of `topic`, which was just deleted.
    pub async fn delete_topic_offsets(&self, topic: &str) -> Result<(), OffsetStoreError> {
        let groups = self.offsets.delete_topic(topic).await?;
        if !groups.is_empty() {
            tracing::info!(
                topic,
                groups = groups.len(),
                "removed the deleted topic's committed offsets"
            );
        }
        Ok(())
    }

    /// Durably removes the committed offsets of every topic for which `exists` says no: a crash
    /// between a topic's deletion and [`Self::delete_topic_offsets`] leaves them, and a topic
    /// created again under the same name must not start from them. Run at start, once the log
    /// (and a restore from the bucket) is in place; returns the topics whose offsets went.
    pub async fn forget_offsets_of_missing_topics(
        &self,
        exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, OffsetStoreError> {
        let mut removed = Vec::new();
        for topic in self.offsets.topics() {
            if !exists(&topic) {
                self.delete_topic_offsets(&topic).await?;
                removed.push(topic);
            }
        }
        Ok(removed)
    }

    pub fn list_groups(&self) -> Vec<GroupListing> {
        let groups = self.groups.lock().expect("groups lock");
        let mut listings: Vec<GroupListing> = groups
            .values()
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_else(|| "consumer".into()),
                state: g.state.kafka_name(),
            })
            .collect();
        for group_id in self.offsets.groups() {
            if !groups.contains_key(&group_id) {
                listings.push(GroupListing {
                    group_id,
                    protocol_type: "consumer".into(),
                    state: "Empty",
                });
            }
        }
        listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listings
    }

    /// `None` when the group is unknown (neither members nor committed offsets).
    pub fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock().expect("groups lock");
        match groups.get(group_id) {
            Some(group) => {
                let protocol = group.protocol_name.clone().unwrap_or_default();
                Some(GroupDescription {
                    group_id: group.group_id.clone(),
                    state: group.state.kafka_name(),
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    protocol_name: protocol.clone(),
                    members: group
                        .members
                        .values()
                        .map(|m| MemberDescription {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default(),
                            assignment: m.assignment.clone(),
                        })
                        .collect(),
                })
            }
            None if self.offsets.has_group(group_id) => Some(GroupDescription {
                group_id: group_id.to_owned(),
                state: "Empty",
                protocol_type: "consumer".into(),
                protocol_name: String::new(),
                members: Vec::new(),
            }),
            None => None,
        }
    }

    /// OffsetDelete, with Kafka's rules: an empty group (or one known only by its committed
    /// offsets) loses the requested offsets; a consumer group with members keeps those of topics
    /// it subscribes to (`GROUP_SUBSCRIBED_TO_TOPIC` for each) and loses the others; a group of
    /// another protocol with members is refused whole (`NON_EMPTY_GROUP`). Partitions without
    /// a committed offset succeed. Answers one result per requested partition, in order.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<((String, i32), Option<ResponseError>)>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let subscribed: Option<Option<HashSet<String>>> = {
            let groups = self.groups.lock().expect("groups lock");
            match groups.get(group_id) {
                Some(group) if group.members.is_empty() => None,
                Some(group) if group.protocol_type.as_deref() == Some("consumer") => {
                    Some(group.subscribed_topics())
                }
                Some(_) => return Err(ResponseError::NonEmptyGroup),
                None if self.offsets.has_group(group_id) => None,
                None => return Err(ResponseError::GroupIdNotFound),
            }
        };
        let in_use = |topic: &str| match &subscribed {
            None => false,
            Some(None) => true,
            Some(Some(topics)) => topics.contains(topic),
        };
        let results: Vec<((String, i32), Option<ResponseError>)> = partitions
            .into_iter()
            .map(|(topic, partition)| {
                let error = in_use(&topic).then_some(ResponseError::GroupSubscribedToTopic);
                ((topic, partition), error)
            })
            .collect();
        let deletable: Vec<(String, i32)> = results
            .iter()
            .filter(|(_, error)| error.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        if !deletable.is_empty() {
            tracing::info!(
                group_id,
                partitions = deletable.len(),
                "deleting committed offsets (OffsetDelete)"
            );
        }
        self.offsets
            .delete_offsets(group_id, deletable)
            .await
            .map_err(|err| {
                tracing::error!(group_id, error = %err, "offset delete failed");
                ResponseError::UnknownServerError
            })?;
        Ok(results)
    }

    /// Deletes an empty group and its offsets.
    pub async fn delete_group(&self, group_id: &str) -> Option<ResponseError> {
        {
            let mut groups = self.groups.lock().expect("groups lock");
            match groups.get(group_id) {
                Some(group) if !group.members.is_empty() => {
                    return Some(ResponseError::NonEmptyGroup);
                }
                Some(_) => {
                    groups.remove(group_id);
                }
                None if !self.offsets.has_group(group_id) => {
                    return Some(ResponseError::GroupIdNotFound);
                }
                None => {}
            }
        }
        match self.offsets.delete_group(group_id).await {
            Ok(()) => None,
            Err(err) => {
                tracing::error!(group_id, error = %err, "group delete failed");
                Some(ResponseError::UnknownServerError)
            }
        }
    }
}
