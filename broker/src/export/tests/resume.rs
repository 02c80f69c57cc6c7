//! Interrupted exports: a re-run goes on without duplicates and refuses changed settings.

use super::*;

/// Turns a complete export at `dest` back into one interrupted after its first `files` files.
async fn interrupt_after(dest: &Destination, files: usize) {
    let mut manifest = Manifest::read(dest, MANIFEST_FILE).await.unwrap().unwrap();
    for dropped in manifest.files.split_off(files) {
        dest.remove(&dropped.file).await.unwrap();
    }
    dest.write_small(
        crate::export::manifest::PARTIAL_MANIFEST_FILE,
        manifest.to_json().unwrap(),
    )
    .await
    .unwrap();
    dest.remove(MANIFEST_FILE).await.unwrap();
}

#[tokio::test]
async fn a_resume_with_another_verify_claims_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, log, _) = tiered_log(&dir.path().join("data"), 5).await;
    let progress = crate::export::progress::ExportProgress::default();
    for started_with in [false, true] {
        let dest = Destination::Local(dir.path().join(format!("out-{started_with}")));
        let (source, request) = whole_log_export(&log, &manager, started_with);
        let manifest = crate::export::job::run_export(&source, &request, &dest, &progress)
            .await
            .unwrap();
        assert_eq!(manifest.verify_claims, started_with);
        assert_eq!(manifest.files.len(), 5, "one file per batch");
        interrupt_after(&dest, 2).await;

        let (source, other) = whole_log_export(&log, &manager, !started_with);
        let error = crate::export::job::run_export(&source, &other, &dest, &progress)
            .await
            .unwrap_err()
            .to_string();
        let (was, now) = if started_with {
            ("with", "without")
        } else {
            ("without", "with")
        };
        assert!(
            error.contains(&format!("started {was} claim payload checks"))
                && error.contains(&format!("resumed {now}"))
                && error.contains("--verify-claims"),
            "{error}"
        );
        assert!(
            Manifest::read(&dest, MANIFEST_FILE)
                .await
                .unwrap()
                .is_none()
        );

        // The same setting resumes, keeping the two files and writing the other three.
        let manifest = crate::export::job::run_export(&source, &request, &dest, &progress)
            .await
            .unwrap();
        assert_eq!(manifest.verify_claims, started_with);
        assert_eq!(
            manifest
                .files
                .iter()
                .map(|f| (f.requested_from_offset, f.requested_to_offset))
                .collect::<Vec<_>>(),
            [(0, 9), (10, 19), (20, 29), (30, 39), (40, 49)]
        );
    }
    manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resume_does_not_write_an_empty_range_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, log, _) = tiered_log(&dir.path().join("data"), 3).await;
    let (source, mut request) = whole_log_export(&log, &manager, false);
    // Times after every record: an empty range, exported as one empty file.
    request.from = Bound::Time(first_batch_ms() + 86_400_000);
    request.to = Bound::Time(first_batch_ms() + 2 * 86_400_000);
    let dest = Destination::Local(dir.path().join("out"));
    let progress = crate::export::progress::ExportProgress::default();
    let manifest = crate::export::job::run_export(&source, &request, &dest, &progress)
        .await
        .unwrap();
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(
        (
            manifest.files[0].requested_from_offset,
            manifest.files[0].records
        ),
        (30, 0)
    );
    // Interrupted after its only file was recorded, before manifest.json was written.
    interrupt_after(&dest, 1).await;
    let resumed = crate::export::job::run_export(&source, &request, &dest, &progress)
        .await
        .unwrap();
    assert_eq!(resumed.files, manifest.files);
    let (_, problems) = verify(&dest).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    manager.shutdown().await.unwrap();
}
