//! Every object key the remote tier writes, and nothing else, is formatted here.
//!
//! ```text
//! <prefix>/topics/<topic>-<topic_id>/topic.json              (topic metadata, for restore)
//! <prefix>/topics/<topic>-<topic_id>/deleted.json            (tombstone: topic being deleted)
//! <prefix>/topics/<topic>-<topic_id>/<partition>/manifest.json
//! <prefix>/topics/<topic>-<topic_id>/<partition>/segments/<base_offset:020>-<upload_id>.seg
//! <prefix>/multipart-uploads/<marker_id>.json                (a multipart upload in progress)
//! ```
//!
//! * The topic id (a UUID, as in Kafka) makes a deleted-and-recreated topic a different directory.
//! * Base offsets are zero-padded to 20 digits so a lexicographic listing is in offset order.
//! * Each upload *attempt* gets a fresh `upload_id`, so a half-written attempt never collides with,
//!   or overwrites, a good one; the manifest says which attempt is the real one.
//!
//! Each `format_*` has a `parse_*` inverse; the tests round-trip them.

use std::fmt;

use object_store::path::Path;
use uuid::Uuid;

/// A partition of a topic, as the remote tier names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

impl PartitionId {
    pub fn new(topic: impl Into<String>, topic_id: Uuid, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            topic_id,
            partition,
        }
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One segment object's identity: partition, base offset, upload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    pub partition: PartitionId,
    pub base_offset: i64,
    pub upload_id: Uuid,
}

fn join(prefix: &Path, rest: &str) -> Path {
    if prefix.as_ref().is_empty() {
        Path::from(rest)
    } else {
        Path::from(format!("{}/{rest}", prefix.as_ref()))
    }
}

/// `<prefix>/multipart-uploads`: one marker per multipart upload in progress through a store
/// opened with this prefix (remote tier, claim payloads, exports); see `multipart.rs`.
pub fn format_multipart_markers_dir(prefix: &Path) -> Path {
    join(prefix, "multipart-uploads")
}

/// `<prefix>/multipart-uploads/<marker_id>.json`.
pub fn format_multipart_marker(prefix: &Path, marker_id: Uuid) -> Path {
    join(
        prefix,
        &format!("multipart-uploads/{}.json", marker_id.simple()),
    )
}

/// The marker id of a key made by [`format_multipart_marker`], or `None`.
pub fn parse_multipart_marker(prefix: &Path, key: &Path) -> Option<Uuid> {
    let dir = format_multipart_markers_dir(prefix);
    let name = key.as_ref().strip_prefix(dir.as_ref())?.strip_prefix('/')?;
    Uuid::try_parse(name.strip_suffix(".json")?).ok()
}

/// `<prefix>/topics`: the root under which every partition lives.
pub fn format_topics_root(prefix: &Path) -> Path {
    join(prefix, "topics")
}

/// `<prefix>/topics/<topic>-<topic_id>/<partition>`.
pub fn format_partition_dir(prefix: &Path, p: &PartitionId) -> Path {
    join(
        prefix,
        &format!(
            "topics/{}-{}/{}",
            p.topic,
            p.topic_id.as_hyphenated(),
            p.partition
        ),
    )
}

/// The partition's manifest object.
pub fn format_manifest(prefix: &Path, p: &PartitionId) -> Path {
    join(
        prefix,
        &format!(
            "topics/{}-{}/{}/manifest.json",
            p.topic,
            p.topic_id.as_hyphenated(),
            p.partition
        ),
    )
}

/// The directory holding a partition's segment objects.
pub fn format_segments_dir(prefix: &Path, p: &PartitionId) -> Path {
    join(
        prefix,
        &format!(
            "topics/{}-{}/{}/segments",
            p.topic,
            p.topic_id.as_hyphenated(),
            p.partition
        ),
    )
}

/// One segment object.
pub fn format_segment(prefix: &Path, k: &SegmentKey) -> Path {
    let p = &k.partition;
    join(
        prefix,
        &format!(
            "topics/{}-{}/{}/segments/{:020}-{}.seg",
            p.topic,
            p.topic_id.as_hyphenated(),
            p.partition,
            k.base_offset,
            k.upload_id.as_hyphenated()
        ),
    )
}

/// The topic's metadata object (name, id, partition count, configs) written by the broker so a
/// broker on an empty data directory can recreate the topic from the bucket.
pub fn format_topic_meta(prefix: &Path, topic: &str, topic_id: Uuid) -> Path {
    join(
        prefix,
        &format!("topics/{topic}-{}/topic.json", topic_id.as_hyphenated()),
    )
}

/// `<prefix>/topics/<topic>-<topic_id>`: everything the remote tier holds for one topic.
pub fn format_topic_dir(prefix: &Path, topic: &str, topic_id: Uuid) -> Path {
    join(
        prefix,
        &format!("topics/{topic}-{}", topic_id.as_hyphenated()),
    )
}

/// The tombstone of a deleted topic: written before anything of the topic is deleted, removed
/// last, so a topic directory holding one is never restored and is finished off at the next start.
pub fn format_topic_tombstone(prefix: &Path, topic: &str, topic_id: Uuid) -> Path {
    join(
        prefix,
        &format!("topics/{topic}-{}/deleted.json", topic_id.as_hyphenated()),
    )
}

/// Inverse of [`format_topic_tombstone`]: `(topic, topic_id)`.
pub fn parse_topic_tombstone(prefix: &Path, key: &Path) -> Option<(String, Uuid)> {
    match relative_parts(prefix, key.as_ref())?.as_slice() {
        [topic_dir, "deleted.json"] => parse_topic_dir(topic_dir),
        _ => None,
    }
}

/// Inverse of [`format_topic_meta`]: `(topic, topic_id)`.
pub fn parse_topic_meta(prefix: &Path, key: &Path) -> Option<(String, Uuid)> {
    match relative_parts(prefix, key.as_ref())?.as_slice() {
        [topic_dir, "topic.json"] => parse_topic_dir(topic_dir),
        _ => None,
    }
}

/// Strip `<prefix>/topics/` and split the rest into parts, or `None`.
fn relative_parts<'a>(prefix: &Path, key: &'a str) -> Option<Vec<&'a str>> {
    let root = format_topics_root(prefix);
    let rest = key.strip_prefix(root.as_ref())?.strip_prefix('/')?;
    Some(rest.split('/').collect())
}

/// Parse `<topic>-<topic_id>` (a topic name may itself contain `-`; the UUID is the last 36 chars).
pub fn parse_topic_dir(name: &str) -> Option<(String, Uuid)> {
    if name.len() < 38 {
        return None;
    }
    let (topic, id) = name.split_at(name.len() - 36);
    let topic = topic.strip_suffix('-')?;
    if topic.is_empty() {
        return None;
    }
    Some((topic.to_string(), Uuid::parse_str(id).ok()?))
}

/// Inverse of [`format_partition_dir`].
pub fn parse_partition_dir(prefix: &Path, key: &Path) -> Option<PartitionId> {
    match relative_parts(prefix, key.as_ref())?.as_slice() {
        [topic_dir, partition] => {
            let (topic, topic_id) = parse_topic_dir(topic_dir)?;
            Some(PartitionId {
                topic,
                topic_id,
                partition: partition.parse().ok()?,
            })
        }
        _ => None,
    }
}

/// Inverse of [`format_manifest`].
pub fn parse_manifest(prefix: &Path, key: &Path) -> Option<PartitionId> {
    match relative_parts(prefix, key.as_ref())?.as_slice() {
        [topic_dir, partition, "manifest.json"] => {
            let (topic, topic_id) = parse_topic_dir(topic_dir)?;
            Some(PartitionId {
                topic,
                topic_id,
                partition: partition.parse().ok()?,
            })
        }
        _ => None,
    }
}

/// Inverse of [`format_segment`].
pub fn parse_segment(prefix: &Path, key: &Path) -> Option<SegmentKey> {
    match relative_parts(prefix, key.as_ref())?.as_slice() {
        [topic_dir, partition, "segments", file] => {
            let (topic, topic_id) = parse_topic_dir(topic_dir)?;
            let stem = file.strip_suffix(".seg")?;
            let (base, upload) = stem.split_once('-')?;
            if base.len() != 20 {
                return None;
            }
            Some(SegmentKey {
                partition: PartitionId {
                    topic,
                    topic_id,
                    partition: partition.parse().ok()?,
                },
                base_offset: base.parse().ok()?,
                upload_id: Uuid::parse_str(upload).ok()?,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid() -> PartitionId {
        PartitionId::new("orders-eu.v2_x", Uuid::new_v4(), 7)
    }

    #[test]
    fn round_trips() {
        for prefix in [Path::from(""), Path::from("cluster-a/tier")] {
            let p = pid();
            assert_eq!(
                parse_manifest(&prefix, &format_manifest(&prefix, &p)),
                Some(p.clone())
            );
            assert_eq!(
                parse_partition_dir(&prefix, &format_partition_dir(&prefix, &p)),
                Some(p.clone())
            );
            let k = SegmentKey {
                partition: p.clone(),
                base_offset: 1234567,
                upload_id: Uuid::new_v4(),
            };
            let key = format_segment(&prefix, &k);
            assert!(
                key.as_ref().contains("/segments/00000000000001234567-"),
                "{key}"
            );
            assert_eq!(parse_segment(&prefix, &key), Some(k));
            assert!(
                format_segment(
                    &prefix,
                    &SegmentKey {
                        base_offset: 0,
                        ..parse_segment(&prefix, &key).unwrap()
                    }
                )
                .as_ref()
                .starts_with(format_segments_dir(&prefix, &p).as_ref())
            );
        }
    }

    #[test]
    fn topic_meta_round_trips() {
        for prefix in [Path::from(""), Path::from("cluster-a/tier")] {
            let p = pid();
            let key = format_topic_meta(&prefix, &p.topic, p.topic_id);
            assert_eq!(
                parse_topic_meta(&prefix, &key),
                Some((p.topic.clone(), p.topic_id))
            );
            assert_eq!(parse_manifest(&prefix, &key), None);
            assert_eq!(
                parse_topic_meta(&prefix, &format_manifest(&prefix, &p)),
                None
            );
            let tombstone = format_topic_tombstone(&prefix, &p.topic, p.topic_id);
            assert_eq!(
                parse_topic_tombstone(&prefix, &tombstone),
                Some((p.topic.clone(), p.topic_id))
            );
            assert_eq!(parse_topic_tombstone(&prefix, &key), None);
            assert_eq!(parse_topic_meta(&prefix, &tombstone), None);
            let dir = format_topic_dir(&prefix, &p.topic, p.topic_id);
            for inside in [&key, &tombstone, &format_manifest(&prefix, &p)] {
                assert!(inside.prefix_matches(&dir), "{inside} under {dir}");
            }
        }
    }

    #[test]
    fn multipart_markers_round_trip_outside_the_topics() {
        for prefix in [Path::from(""), Path::from("cluster-a/tier")] {
            let id = Uuid::new_v4();
            let key = format_multipart_marker(&prefix, id);
            assert_eq!(parse_multipart_marker(&prefix, &key), Some(id));
            assert!(key.prefix_matches(&format_multipart_markers_dir(&prefix)));
            assert!(!key.prefix_matches(&format_topics_root(&prefix)));
            assert_eq!(
                parse_multipart_marker(&prefix, &format_manifest(&prefix, &pid())),
                None
            );
            let other = Path::from(key.as_ref().replace(".json", ".tmp"));
            assert_eq!(parse_multipart_marker(&prefix, &other), None);
        }
    }

    #[test]
    fn rejects_foreign_keys() {
        let prefix = Path::from("x");
        assert_eq!(
            parse_manifest(&prefix, &Path::from("x/topics/t/0/manifest.json")),
            None
        );
        assert_eq!(
            parse_manifest(&prefix, &Path::from("y/topics/t-0/0/manifest.json")),
            None
        );
        let p = pid();
        let seg = format_segment(
            &prefix,
            &SegmentKey {
                partition: p,
                base_offset: 5,
                upload_id: Uuid::nil(),
            },
        );
        assert_eq!(parse_manifest(&prefix, &seg), None);
        assert_eq!(
            parse_segment(&prefix, &Path::from(seg.as_ref().replace(".seg", ".tmp"))),
            None
        );
    }
}
