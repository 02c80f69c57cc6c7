use super::*;

fn timings() -> GroupTimings {
    GroupTimings {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupTimings::default()
    }
}

fn params(member_id: &str, metadata: &'static [u8]) -> JoinParams {
    JoinParams {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(metadata))],
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

fn now_value<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(value) => value,
        Reply::Later(_) => panic!("expected an immediate reply"),
    }
}

fn later<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a parked reply"),
    }
}

/// Joins a brand-new member (MEMBER_ID_REQUIRED round trip) and returns its id and parked reply.
fn join_new(group: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinOutcome>) {
    let required = now_value(group.join(params("", b"m"), now, &timings()));
    assert_eq!(required.error, Some(ResponseError::MemberIdRequired));
    assert!(required.member_id.starts_with("client-"));
    let rx = later(group.join(params(&required.member_id, b"m"), now, &timings()));
    (required.member_id, rx)
}

#[test]
fn single_member_joins_syncs_and_becomes_stable() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (member, mut rx) = join_new(&mut group, now);
    let joined = rx.try_recv().unwrap();
    assert_eq!(joined.error, None);
    assert_eq!(joined.generation, 1);
    assert_eq!(joined.leader, member);
    assert_eq!(joined.members.len(), 1);
    assert_eq!(group.state, GroupState::CompletingRebalance);

    let mut sync = later(group.sync(
        &member,
        None,
        1,
        vec![(member.clone(), Bytes::from_static(b"a"))],
    ));
    let synced = sync.try_recv().unwrap();
    assert_eq!(synced.assignment, Bytes::from_static(b"a"));
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.heartbeat(&member, None, 1, now), None);
    assert_eq!(
        group.heartbeat(&member, None, 0, now),
        Some(ResponseError::IllegalGeneration)
    );
}

#[test]
fn second_member_triggers_rebalance_and_heartbeat_says_so() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (first, mut rx) = join_new(&mut group, now);
    rx.try_recv().unwrap();
    let mut sync = later(group.sync(
        &first,
        None,
        1,
        vec![(first.clone(), Bytes::from_static(b"all"))],
    ));
    assert_eq!(
        sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"all")
    );

    let (second, mut rx2) = join_new(&mut group, now);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&first, None, 1, now),
        Some(ResponseError::RebalanceInProgress)
    );
    assert!(
        rx2.try_recv().is_err(),
        "round waits for the first member to re-join"
    );

    let mut rx1 = later(group.join(params(&first, b"m"), now, &timings()));
    let leader_view = rx1.try_recv().unwrap();
    let follower_view = rx2.try_recv().unwrap();
    assert_eq!(leader_view.generation, 2);
    assert_eq!(
        leader_view.leader, first,
        "leadership is kept across rounds"
    );
    assert_eq!(leader_view.members.len(), 2);
    assert!(follower_view.members.is_empty());

    let mut follower_sync = later(group.sync(&second, None, 2, vec![]));
    assert!(
        follower_sync.try_recv().is_err(),
        "follower waits for the leader's assignment"
    );
    let mut leader_sync = later(group.sync(
        &first,
        None,
        2,
        vec![
            (first.clone(), Bytes::from_static(b"p0")),
            (second.clone(), Bytes::from_static(b"p1")),
        ],
    ));
    assert_eq!(
        leader_sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"p0")
    );
    assert_eq!(
        follower_sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"p1")
    );
}

#[test]
fn leave_rebalances_the_rest_and_last_leave_empties_the_group() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (a, _) = join_new(&mut group, now);
    let (b, _) = join_new(&mut group, now);
    let mut ra = later(group.join(params(&a, b"m"), now, &timings()));
    ra.try_recv().unwrap();
    let mut follower_sync = later(group.sync(&b, None, group.generation, vec![]));
    assert_eq!(group.leave(&b, None, now, &timings()), None);
    assert_eq!(
        follower_sync.try_recv().unwrap().error,
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let mut ra = later(group.join(params(&a, b"m"), now, &timings()));
    let rejoined = ra.try_recv().unwrap();
    assert_eq!(rejoined.members.len(), 1);
    assert_eq!(group.leave(&a, None, now, &timings()), None);
    assert_eq!(
        group.state,
        GroupState::Empty,
        "the round completes at once with nobody left"
    );
    assert_eq!(
        group.leave("nobody", None, now, &timings()),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn expired_session_removes_the_member() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (a, mut rx) = join_new(&mut group, now);
    rx.try_recv().unwrap();
    group.tick(now + Duration::from_secs(11), &timings());
    assert!(!group.members.contains_key(&a));
    assert_eq!(group.state, GroupState::Empty);
}

#[test]
fn rebalance_timeout_drops_members_that_never_rejoin() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (a, mut rx) = join_new(&mut group, now);
    rx.try_recv().unwrap();
    let (_b, mut rb) = join_new(&mut group, now);
    // `a` keeps heartbeating but never re-joins.
    for secs in [5, 10, 15, 20, 25] {
        group.heartbeat(&a, None, 1, now + Duration::from_secs(secs));
        group.tick(now + Duration::from_secs(secs), &timings());
    }
    assert!(rb.try_recv().is_err());
    group.tick(now + Duration::from_secs(31), &timings());
    let outcome = rb.try_recv().unwrap();
    assert_eq!(outcome.members.len(), 1);
    assert!(!group.members.contains_key(&a));
}

#[test]
fn commits_are_checked_against_membership() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    assert_eq!(
        group.validate_commit("", None, -1),
        None,
        "simple commits go to empty groups"
    );
    let (a, mut rx) = join_new(&mut group, now);
    rx.try_recv().unwrap();
    assert_eq!(
        group.validate_commit(&a, None, 1),
        Some(ResponseError::RebalanceInProgress)
    );
    let _ = group.sync(&a, None, 1, vec![]);
    assert_eq!(group.validate_commit(&a, None, 1), None);
    assert_eq!(
        group.validate_commit(&a, None, 7),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.validate_commit("stranger", None, 1),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn bad_session_timeout_and_protocol_mismatch_are_refused() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let mut bad = params("", b"m");
    bad.session_timeout = Duration::from_millis(10);
    assert_eq!(
        now_value(group.join(bad, now, &timings())).error,
        Some(ResponseError::InvalidSessionTimeout)
    );
    let (_a, _rx) = join_new(&mut group, now);
    let mut other = params("", b"m");
    other.protocols = vec![("roundrobin-only".into(), Bytes::new())];
    assert_eq!(
        now_value(group.join(other, now, &timings())).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}

/// A static member, with a session longer than the rebalance timeout as static members
/// usually have.
fn static_params(member_id: &str, instance: &str) -> JoinParams {
    JoinParams {
        group_instance_id: Some(instance.to_owned()),
        session_timeout: Duration::from_secs(60),
        ..params(member_id, b"m")
    }
}

/// Two static members `a` (the leader) and `b`, stable at generation 1 with assignments
/// `pa` and `pb`. Returns their member ids.
fn stable_static_pair(group: &mut Group, now: Instant) -> (String, String) {
    // Static members join without the MEMBER_ID_REQUIRED round.
    let mut a_rx = later(group.join(static_params("", "a"), now, &timings()));
    let a = a_rx.try_recv().unwrap();
    assert_eq!((a.error, a.generation), (None, 1));
    let mut sync = later(group.sync(
        &a.member_id,
        Some("a"),
        1,
        vec![(a.member_id.clone(), Bytes::from_static(b"all"))],
    ));
    sync.try_recv().unwrap();
    let mut b_rx = later(group.join(static_params("", "b"), now, &timings()));
    let mut a_again = later(group.join(static_params(&a.member_id, "a"), now, &timings()));
    let (a2, b) = (a_again.try_recv().unwrap(), b_rx.try_recv().unwrap());
    assert_eq!(
        (a2.generation, a2.leader.as_str()),
        (2, a.member_id.as_str())
    );
    let mut b_sync = later(group.sync(&b.member_id, Some("b"), 2, vec![]));
    let mut a_sync = later(group.sync(
        &a.member_id,
        Some("a"),
        2,
        vec![
            (a.member_id.clone(), Bytes::from_static(b"pa")),
            (b.member_id.clone(), Bytes::from_static(b"pb")),
        ],
    ));
    assert_eq!(
        a_sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"pa")
    );
    assert_eq!(
        b_sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"pb")
    );
    assert_eq!(group.state, GroupState::Stable);
    (a.member_id, b.member_id)
}

#[test]
fn a_restarted_static_member_takes_its_place_back_without_a_rebalance() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (_, old_b) = stable_static_pair(&mut group, now);

    // `b` restarts: no member id, same instance id. Answered at once, same generation.
    let rejoined = now_value(group.join(static_params("", "b"), now, &timings()));
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.generation, 2);
    assert_ne!(rejoined.member_id, old_b);
    assert!(rejoined.members.is_empty() && !rejoined.skip_assignment);
    assert_eq!(group.state, GroupState::Stable, "no rebalance");
    let synced = now_value(group.sync(&rejoined.member_id, Some("b"), 2, vec![]));
    assert_eq!(
        synced.assignment,
        Bytes::from_static(b"pb"),
        "its old assignment"
    );
    assert_eq!(
        group.heartbeat(&rejoined.member_id, Some("b"), 2, now),
        None
    );

    // The old process, if still alive, is fenced everywhere.
    assert_eq!(
        group.heartbeat(&old_b, Some("b"), 2, now),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        group.validate_commit(&old_b, Some("b"), 2),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        now_value(group.join(static_params(&old_b, "b"), now, &timings())).error,
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        now_value(group.sync(&old_b, Some("b"), 2, vec![])).error,
        Some(ResponseError::FencedInstanceId)
    );
}

#[test]
fn a_restarted_static_leader_is_told_to_skip_assignment_or_not_told_it_leads() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (old_a, _) = stable_static_pair(&mut group, now);

    // v9+: told it leads, with the members, and to skip the assignment.
    let v9 = now_value(group.join(static_params("", "a"), now, &timings()));
    assert_eq!(v9.leader, v9.member_id);
    assert!(v9.skip_assignment);
    assert_eq!(v9.members.len(), 2);
    assert_eq!(group.state, GroupState::Stable);

    // Before v9: the previous leader id is answered, so the member does not assign.
    let before_v9 = now_value(group.join(
        JoinParams {
            supports_skip_assignment: false,
            ..static_params("", "a")
        },
        now,
        &timings(),
    ));
    assert_eq!(before_v9.leader, v9.member_id);
    assert_ne!(before_v9.leader, before_v9.member_id);
    assert!(before_v9.members.is_empty() && !before_v9.skip_assignment);
    assert_ne!(before_v9.member_id, old_a);
    let synced = now_value(group.sync(&before_v9.member_id, Some("a"), 2, vec![]));
    assert_eq!(synced.assignment, Bytes::from_static(b"pa"));
}

#[test]
fn a_static_member_that_misses_a_rebalance_keeps_its_place_until_its_session_expires() {
    let start = Instant::now();
    let mut group = Group::new("g".into(), start);
    let (a, b) = stable_static_pair(&mut group, start);

    // A dynamic member joins; `a` re-joins, `b` (down) does not.
    let (_c, mut c_rx) = join_new(&mut group, start);
    let mut a_rx = later(group.join(static_params(&a, "a"), start, &timings()));
    group.heartbeat(&b, Some("b"), 2, start);
    let after_deadline = start + Duration::from_secs(31);
    group.tick(after_deadline, &timings());
    let (a_view, c_view) = (a_rx.try_recv().unwrap(), c_rx.try_recv().unwrap());
    assert_eq!(a_view.generation, 3);
    assert_eq!(a_view.leader, a, "a joined member leads");
    let listed: Vec<&str> = a_view
        .members
        .iter()
        .map(|(id, _, _)| id.as_str())
        .collect();
    assert!(
        listed.contains(&b.as_str()),
        "b keeps its place: {listed:?}"
    );
    assert_eq!(c_view.generation, 3);
    assert_eq!(group.members.len(), 3);

    // Its session (60 s, restarted by the completed round as in Kafka) runs out: now it is
    // removed.
    group.tick(after_deadline + Duration::from_secs(59), &timings());
    assert!(group.members.contains_key(&b));
    group.tick(after_deadline + Duration::from_secs(61), &timings());
    assert!(!group.members.contains_key(&b));
}

#[test]
fn leave_group_names_a_static_member_by_its_instance_id() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (a, b) = stable_static_pair(&mut group, now);
    assert_eq!(
        group.leave("", Some("nobody"), now, &timings()),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.leave(&a, Some("b"), now, &timings()),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(group.leave("", Some("b"), now, &timings()), None);
    assert!(!group.members.contains_key(&b));
    assert_eq!(group.state, GroupState::PreparingRebalance);
}
