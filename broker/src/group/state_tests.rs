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

    let mut sync = later(group.sync(&member, 1, vec![(member.clone(), Bytes::from_static(b"a"))]));
    let synced = sync.try_recv().unwrap();
    assert_eq!(synced.assignment, Bytes::from_static(b"a"));
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.heartbeat(&member, 1, now), None);
    assert_eq!(
        group.heartbeat(&member, 0, now),
        Some(ResponseError::IllegalGeneration)
    );
}

#[test]
fn second_member_triggers_rebalance_and_heartbeat_says_so() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), now);
    let (first, mut rx) = join_new(&mut group, now);
    rx.try_recv().unwrap();
    let mut sync = later(group.sync(&first, 1, vec![(first.clone(), Bytes::from_static(b"all"))]));
    assert_eq!(
        sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"all")
    );

    let (second, mut rx2) = join_new(&mut group, now);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&first, 1, now),
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

    let mut follower_sync = later(group.sync(&second, 2, vec![]));
    assert!(
        follower_sync.try_recv().is_err(),
        "follower waits for the leader's assignment"
    );
    let mut leader_sync = later(group.sync(
        &first,
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
    let mut follower_sync = later(group.sync(&b, group.generation, vec![]));
    assert_eq!(group.leave(&b, now, &timings()), None);
    assert_eq!(
        follower_sync.try_recv().unwrap().error,
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let mut ra = later(group.join(params(&a, b"m"), now, &timings()));
    let rejoined = ra.try_recv().unwrap();
    assert_eq!(rejoined.members.len(), 1);
    assert_eq!(group.leave(&a, now, &timings()), None);
    assert_eq!(
        group.state,
        GroupState::Empty,
        "the round completes at once with nobody left"
    );
    assert_eq!(
        group.leave("nobody", now, &timings()),
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
        group.heartbeat(&a, 1, now + Duration::from_secs(secs));
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
        group.validate_commit("", -1),
        None,
        "simple commits go to empty groups"
    );
    let (a, mut rx) = join_new(&mut group, now);
    rx.try_recv().unwrap();
    assert_eq!(
        group.validate_commit(&a, 1),
        Some(ResponseError::RebalanceInProgress)
    );
    let _ = group.sync(&a, 1, vec![]);
    assert_eq!(group.validate_commit(&a, 1), None);
    assert_eq!(
        group.validate_commit(&a, 7),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.validate_commit("stranger", 1),
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
