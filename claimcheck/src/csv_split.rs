//! CSV split mode (`?mode=csv` or `Content-Type: text/csv`): one record per row, then a summary.
//!
//! ```text
//!  body ──► spool file (SHA-256, size limit, declared size/digest checked) ──► [reject: validate
//!  every row; any malformed row => 422 with line numbers, nothing produced] ──► parse again on a
//!  blocking thread ──► batches of rows (bounded channel) ──► TicketSink::append_batch (one
//!  partition, file order) ──► summary record {rows, bytes, sha256, skipped...}
//! ```
//!
//! Why spool: a row can only be produced once, and a malformed row, a truncated body or a digest
//! mismatch may show up at the very end. Spooling to disk (bounded memory, bounded by
//! `max.upload.bytes` on disk) lets both error modes promise "a failed upload produced nothing":
//! * `on_error=reject` (default): the file is validated completely before the first record.
//! * `on_error=skip`: malformed rows are skipped, counted, and the first 100 are listed (with line
//!   numbers) in the summary record and the response.
//!
//! A sink failure in the middle of production leaves the rows appended so far without a summary
//! record; consumers treat rows without a summary as incomplete (the summary is the commit point).
//! Row records carry headers `claimcheck.csv.id` and `claimcheck.csv.line`; `?format=json`
//! (default) makes the value a JSON object keyed by the header row (file column order),
//! `?format=raw` the row re-encoded as one CSV line. `?key_column=` names the column used as key.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::info;

use crate::chunked::payload_partition;
use crate::error::{ClaimError, CsvRowError, Result};
use crate::http::UploadQuery;
use crate::service::ClaimCheckService;
use crate::sink::OutRecord;
use crate::ticket::ClaimId;
use crate::upload::{BodyVerifier, ByteStream, ClaimRequest, StoredObject};

pub mod csv_header {
    pub const ID: &str = "claimcheck.csv.id";
    pub const LINE: &str = "claimcheck.csv.line";
    pub const SUMMARY: &str = "claimcheck.csv.summary";
}

/// Rows per `append_batch`, and the byte budget of one batch.
const ROWS_PER_APPEND: usize = 2000;
const BYTES_PER_APPEND: usize = 1024 * 1024;
/// The name prefix of the spool files (a host may remove leftovers of a crash by it).
pub const SPOOL_FILE_PREFIX: &str = "strata-csv-";
/// The longest row the parser reads: beyond it the file is refused (an unterminated quote, or
/// no line breaks at all, would otherwise make one field of the whole upload, in memory).
pub const MAX_ROW_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes read from the file that the parser may not have consumed yet (its buffers).
const READ_AHEAD_BYTES: u64 = 512 * 1024;
/// Malformed rows listed (all are counted).
const LISTED_ROW_ERRORS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowFormat {
    Json,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMalformedRow {
    Reject,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    pub format: RowFormat,
    pub key_column: Option<String>,
    pub on_error: OnMalformedRow,
}

impl CsvOptions {
    pub fn from_query(query: &UploadQuery) -> Result<Self> {
        let format = match query.format.as_deref() {
            None | Some("json") => RowFormat::Json,
            Some("raw") => RowFormat::Raw,
            Some(other) => {
                return Err(ClaimError::BadRequest(format!(
                    "unknown format {other:?}: json or raw"
                )));
            }
        };
        let on_error = match query.on_error.as_deref() {
            None | Some("reject") => OnMalformedRow::Reject,
            Some("skip") => OnMalformedRow::Skip,
            Some(other) => {
                return Err(ClaimError::BadRequest(format!(
                    "unknown on_error {other:?}: reject or skip"
                )));
            }
        };
        Ok(Self {
            format,
            key_column: query.key_column.clone(),
            on_error,
        })
    }
}

/// The response to a CSV upload and the JSON value of its summary record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvReceipt {
    pub id: ClaimId,
    pub topic: String,
    pub partition: i32,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub skipped_rows: u64,
    /// The first malformed rows (at most 100), with line numbers.
    pub skipped: Vec<CsvRowError>,
    pub first_offset: Option<i64>,
    pub summary_offset: i64,
}

/// CSV split mode end to end; see the module docs.
pub async fn produce_csv(
    svc: &ClaimCheckService,
    req: ClaimRequest,
    options: CsvOptions,
    body: ByteStream,
) -> Result<CsvReceipt> {
    req.validate(svc)?;
    let (spool, stored) = spool_body(svc, &req, body).await?;
    let spool_path = spool.path().to_path_buf();

    if options.on_error == OnMalformedRow::Reject {
        let opts = options.clone();
        let path = spool_path.clone();
        let report = tokio::task::spawn_blocking(move || {
            split_rows(std::fs::File::open(path)?, &opts, &[], |_| Ok(()))
        })
        .await
        .map_err(|e| ClaimError::Internal(e.to_string()))??;
        if !report.errors.is_empty() {
            return Err(ClaimError::MalformedCsv {
                rows: report.errors,
            });
        }
    }

    let id = ClaimId::random();
    let partitions = svc.sink().partition_count(&req.topic).unwrap_or(1);
    let partition = payload_partition(req.partition, &id, partitions);
    let (batches_tx, mut batches_rx) = tokio::sync::mpsc::channel::<Vec<OutRecord>>(2);
    let opts = options.clone();
    let mut row_headers = req.headers.clone();
    row_headers.push((csv_header::ID.into(), Bytes::from(id.to_string())));
    let parser = tokio::task::spawn_blocking(move || {
        split_rows(
            std::fs::File::open(&spool_path)?,
            &opts,
            &row_headers,
            |batch| {
                batches_tx
                    .blocking_send(batch)
                    .map_err(|_| ClaimError::Internal("CSV producer stopped".into()))
            },
        )
    });
    let mut first_offset = None;
    let mut append_error = None;
    while let Some(batch) = batches_rx.recv().await {
        match svc
            .sink()
            .append_batch(&req.topic, Some(partition), batch)
            .await
        {
            Ok(positions) => first_offset = first_offset.or(positions.first().map(|p| p.offset)),
            Err(e) => {
                append_error = Some(e);
                break;
            }
        }
    }
    drop(batches_rx);
    let report = parser
        .await
        .map_err(|e| ClaimError::Internal(e.to_string()));
    if let Some(e) = append_error {
        return Err(e.into());
    }
    let report = report??;
    drop(spool);

    let mut receipt = CsvReceipt {
        id,
        topic: req.topic.clone(),
        partition,
        rows: report.rows,
        bytes: stored.size,
        sha256: stored.sha256_hex(),
        skipped_rows: report.malformed_rows,
        skipped: report.errors,
        first_offset,
        summary_offset: -1,
    };
    let mut headers = req.headers.clone();
    headers.push((csv_header::ID.into(), Bytes::from(id.to_string())));
    headers.push((csv_header::SUMMARY.into(), Bytes::from_static(b"true")));
    let value = Bytes::from(serde_json::to_vec(&receipt).expect("serializes"));
    let position = svc
        .sink()
        .append_batch(
            &req.topic,
            Some(partition),
            vec![OutRecord {
                key: None,
                value,
                headers,
            }],
        )
        .await?;
    receipt.summary_offset = position.last().map_or(-1, |p| p.offset);
    info!(csv = %id, topic = %req.topic, partition, rows = receipt.rows,
          skipped = receipt.skipped_rows, "CSV split produced");
    Ok(receipt)
}

/// Writes the body to a temp file, verifying size limit, declared size and digest.
async fn spool_body(
    svc: &ClaimCheckService,
    req: &ClaimRequest,
    mut body: ByteStream,
) -> Result<(tempfile::NamedTempFile, StoredObject)> {
    let spool = tempfile::Builder::new()
        .prefix(SPOOL_FILE_PREFIX)
        .tempfile_in(svc.config().spool_dir())?;
    let mut file = tokio::fs::File::from_std(spool.reopen()?);
    let expect = req.expectations(svc.config().max_upload_bytes);
    let mut verifier = BodyVerifier::default();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        verifier.update(&piece, &expect)?;
        file.write_all(&piece).await?;
    }
    file.flush().await?;
    Ok((spool, verifier.finish(&expect)?))
}

/// What one pass over the file found.
#[derive(Debug, Default)]
struct SplitReport {
    rows: u64,
    malformed_rows: u64,
    errors: Vec<CsvRowError>,
}

/// The file under the parser, failing a read that would take the current row past
/// [`MAX_ROW_BYTES`]: the parser grows a row's buffer until the row ends.
struct RowLimitedReader<R> {
    inner: R,
    read: u64,
    /// The file offset reading must not pass (set before each row).
    limit: Arc<AtomicU64>,
}

#[derive(Debug)]
struct RowTooLong;

impl std::fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a row longer than {} MiB (an unterminated quote?)",
            MAX_ROW_BYTES >> 20
        )
    }
}

impl std::error::Error for RowTooLong {}

impl<R: Read> Read for RowLimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read >= self.limit.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(RowTooLong));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn is_row_too_long(error: &csv::Error) -> bool {
    matches!(error.kind(), csv::ErrorKind::Io(io)
        if io.get_ref().is_some_and(|inner| inner.is::<RowTooLong>()))
}

fn row_too_long(line: u64) -> ClaimError {
    ClaimError::MalformedCsv {
        rows: vec![CsvRowError {
            line,
            message: RowTooLong.to_string(),
        }],
    }
}

/// Parses the CSV in `input` and hands batches of row records to `emit` (blocking code).
fn split_rows(
    input: impl Read,
    options: &CsvOptions,
    row_headers: &[(String, Bytes)],
    mut emit: impl FnMut(Vec<OutRecord>) -> Result<()>,
) -> Result<SplitReport> {
    let limit = Arc::new(AtomicU64::new(MAX_ROW_BYTES + READ_AHEAD_BYTES));
    let input = RowLimitedReader {
        inner: input,
        read: 0,
        limit: limit.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(256 * 1024, input));
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| {
            if is_row_too_long(&e) {
                return row_too_long(1);
            }
            ClaimError::MalformedCsv {
                rows: vec![CsvRowError {
                    line: 1,
                    message: format!("header row: {e}"),
                }],
            }
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let key_index = match &options.key_column {
        Some(name) => Some(columns.iter().position(|c| c == name).ok_or_else(|| {
            ClaimError::BadRequest(format!("key_column {name:?} is not in the header row"))
        })?),
        None => None,
    };
    let raw_line = SharedLine::default();
    let mut raw_writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(raw_line.clone());
    let mut report = SplitReport::default();
    let mut batch = Vec::with_capacity(ROWS_PER_APPEND);
    let mut batch_bytes = 0usize;
    let mut row = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        limit.store(
            reader.position().byte() + MAX_ROW_BYTES + READ_AHEAD_BYTES,
            Ordering::Relaxed,
        );
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            // The rest of the file cannot be told apart from that row: refused as a whole.
            Err(e) if is_row_too_long(&e) => return Err(row_too_long(line)),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(ClaimError::Internal(e.to_string()));
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                record_malformed(&mut report, line, e.to_string());
                continue;
            }
        }
        let line = row.position().map_or(line, |p| p.line());
        let value = match row_value(&row, &columns, options.format, &mut raw_writer, &raw_line) {
            Ok(value) => value,
            Err(message) => {
                record_malformed(&mut report, line, message);
                continue;
            }
        };
        report.rows += 1;
        let key = key_index
            .and_then(|i| row.get(i))
            .map(Bytes::copy_from_slice);
        let mut headers = row_headers.to_vec();
        headers.push((csv_header::LINE.into(), Bytes::from(line.to_string())));
        batch_bytes += value.len();
        batch.push(OutRecord {
            key,
            value,
            headers,
        });
        if batch.len() >= ROWS_PER_APPEND || batch_bytes >= BYTES_PER_APPEND {
            emit(std::mem::replace(
                &mut batch,
                Vec::with_capacity(ROWS_PER_APPEND),
            ))?;
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        emit(batch)?;
    }
    Ok(report)
}

fn record_malformed(report: &mut SplitReport, line: u64, message: String) {
    report.malformed_rows += 1;
    if report.errors.len() < LISTED_ROW_ERRORS {
        report.errors.push(CsvRowError { line, message });
    }
}

/// The record value of one row.
fn row_value(
    row: &csv::ByteRecord,
    columns: &[String],
    format: RowFormat,
    raw_writer: &mut csv::Writer<SharedLine>,
    raw_line: &SharedLine,
) -> std::result::Result<Bytes, String> {
    match format {
        RowFormat::Raw => {
            raw_writer
                .write_byte_record(row)
                .map_err(|e| e.to_string())?;
            raw_writer.flush().map_err(|e| e.to_string())?;
            let mut line = raw_line.0.take();
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            Ok(Bytes::from(line))
        }
        RowFormat::Json => {
            let mut fields = Vec::with_capacity(row.len());
            for (i, field) in row.iter().enumerate() {
                let text = std::str::from_utf8(field)
                    .map_err(|_| format!("field {} is not valid UTF-8", i + 1))?;
                fields.push(text);
            }
            let object = RowObject {
                columns,
                fields: &fields,
            };
            Ok(Bytes::from(
                serde_json::to_vec(&object).map_err(|e| e.to_string())?,
            ))
        }
    }
}

/// A row as a JSON object with keys in header-row order.
struct RowObject<'a> {
    columns: &'a [String],
    fields: &'a [&'a str],
}

impl Serialize for RowObject<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.columns.iter().zip(self.fields.iter()))
    }
}

/// The buffer the raw-format CSV writer writes one line into.
#[derive(Clone, Default)]
struct SharedLine(std::rc::Rc<std::cell::Cell<Vec<u8>>>);

impl std::io::Write for SharedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = self.0.take();
        line.extend_from_slice(buf);
        self.0.set(line);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a` then a line opening a quote that never closes, then `x` forever (counted).
    struct Unterminated {
        prefix: &'static [u8],
        served: u64,
    }

    impl Read for Unterminated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(64 * 1024);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let at = self.served as usize + i;
                *b = self.prefix.get(at).copied().unwrap_or(b'x');
            }
            self.served += n as u64;
            Ok(n)
        }
    }

    /// An unterminated quote makes the rest of the upload one field: the parser stops reading
    /// past the row limit (memory stays bounded) and refuses the file, naming the line.
    #[test]
    fn a_row_that_never_ends_is_refused_without_reading_on() {
        let options = CsvOptions {
            format: RowFormat::Json,
            key_column: None,
            on_error: OnMalformedRow::Skip,
        };
        let mut input = Unterminated {
            prefix: b"a,b\n1,2\n3,\"",
            served: 0,
        };
        let mut emitted = 0;
        let error = split_rows(&mut input, &options, &[], |rows| {
            emitted += rows.len();
            Ok(())
        })
        .unwrap_err();
        match &error {
            ClaimError::MalformedCsv { rows } => {
                assert_eq!(rows[0].line, 3, "{error}");
                assert!(rows[0].message.contains("longer than 16 MiB"), "{error}");
            }
            other => panic!("{other}"),
        }
        assert!(
            input.served <= MAX_ROW_BYTES + 2 * READ_AHEAD_BYTES,
            "read {} bytes",
            input.served
        );
        assert_eq!(emitted, 0, "nothing is emitted once the file is refused");
    }
}
