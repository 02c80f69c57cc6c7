//! One Parquet file per exported partition range, in a fixed Arrow schema:
//!
//! | column         | type                                   |
//! | -------------- | -------------------------------------- |
//! | topic          | utf8                                   |
//! | partition      | int32                                  |
//! | offset         | int64                                  |
//! | timestamp      | timestamp(ms, UTC)                     |
//! | timestamp_type | utf8 (`CreateTime` / `LogAppendTime`)  |
//! | key            | binary, null for a null key            |
//! | value          | binary (or utf8, or utf8 + `arrow.json` = Parquet JSON: [`ValueFormat`]), null for a tombstone |
//! | headers        | list<struct<key utf8, value binary>>   |
//! | producer_id    | int64 (-1 without idempotence)         |
//! | claim          | struct<id, uri utf8, size int64, sha256 utf8>, null unless the record is a claim ticket |
//!
//! Row groups close at [`ROW_GROUP_BYTES`] of record data or [`ROW_GROUP_ROWS`] rows, pages are
//! zstd-compressed. Each closed row group is built into Arrow arrays and encoded on the blocking
//! pool, up to [`encode_jobs`] row groups at once, while the next one is collected: encoding and
//! compression are most of an export's CPU, and encoding one row group at a time would leave the
//! other cores to the reader alone. Encoded row groups are appended to the file in order. Bytes go
//! to a [`FileSink`], which makes the file visible (rename, or multipart completion) only in
//! [`finish`](PartitionParquetWriter::finish).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::builder::{
    BinaryBuilder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::extension::Json;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use tokio::task::JoinHandle;

use super::destination::FileSink;
use super::{ClaimFields, ExportError, ExportRecord, ValueFormat};

/// Record bytes (keys, values, headers) per row group: a large row group for analytics readers
/// that keeps the export's memory bounded while [`encode_jobs`] of them are encoded at once
/// (each holds its Arrow arrays and its encoded pages). Measured on a 512 MiB export with two
/// encoders: 16 MiB peaks at 200 MiB RSS, 24 MiB at 234 MiB, for the same speed.
pub const ROW_GROUP_BYTES: usize = 16 << 20;
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Row groups encoded at once: one per core, at least two (so encoding overlaps with appending
/// the previous row group to the file) and at most four (memory, see [`ROW_GROUP_BYTES`]).
pub fn encode_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

fn claim_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("uri", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("sha256", DataType::Utf8, false),
    ])
}

fn header_item() -> Field {
    Field::new("item", DataType::Struct(header_fields()), false)
}

/// `level` as the parquet crate's zstd level, or the range zstd accepts.
pub fn zstd(level: i32) -> Result<ZstdLevel, ExportError> {
    ZstdLevel::try_new(level).map_err(|_| {
        let levels = zstd::compression_level_range();
        ExportError::BadRequest(format!(
            "zstd level {level} is out of range: give {} to {} (negative levels are faster and \
             compress less)",
            levels.start(),
            levels.end()
        ))
    })
}

/// Index of the `value` column in [`schema`].
const VALUE_COLUMN: usize = 6;
/// Index of the `offset` column in [`schema`].
const OFFSET_COLUMN: usize = 2;

/// The export schema (see the module doc), with the `value` column as `values` asks.
pub fn schema(values: ValueFormat) -> SchemaRef {
    let value = match values {
        ValueFormat::Binary => Field::new("value", DataType::Binary, true),
        ValueFormat::Utf8 => Field::new("value", DataType::Utf8, true),
        ValueFormat::Json => {
            Field::new("value", DataType::Utf8, true).with_extension_type(Json::default())
        }
    };
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("timestamp_type", DataType::Utf8, false),
        Field::new("key", DataType::Binary, true),
        value,
        Field::new("headers", DataType::List(Arc::new(header_item())), false),
        Field::new("producer_id", DataType::Int64, false),
        Field::new("claim", DataType::Struct(claim_fields()), true),
    ]))
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub records: u64,
    /// First and last exported offset; `None` for an empty file.
    pub offsets: Option<(i64, i64)>,
    /// Smallest and largest record timestamp; `None` for an empty file.
    pub timestamps: Option<(i64, i64)>,
    /// SHA-256 (hex) and size of the file as written.
    pub sha256: String,
    pub bytes: u64,
}

/// Encoded bytes of the file not yet handed to the sink: the synchronous Parquet file writer
/// writes here, and the async sink takes them after each row group and at the footer.
#[derive(Clone, Default)]
struct PendingBytes(Arc<Mutex<Vec<u8>>>);

impl PendingBytes {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("pending bytes lock"))
    }

    fn len(&self) -> usize {
        self.0.lock().expect("pending bytes lock").len()
    }
}

impl Write for PendingBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("pending bytes lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Byte buffers of the `value` column taken back from encoded row groups, to be filled again:
/// the largest allocation of an export (a row group's values), which fresh from the allocator
/// costs a page fault per 4 KiB written. Holds at most the row groups in flight.
#[derive(Clone, Default)]
struct ValueBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl ValueBuffers {
    /// An empty buffer of at least `capacity` bytes, reused if one is free.
    fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.0.lock().expect("value buffers lock").pop();
        let mut buffer = reused.unwrap_or_default();
        buffer.clear();
        buffer.reserve(capacity);
        buffer
    }

    /// Takes back the value bytes of an encoded row group, if nothing else holds them.
    fn give_back(&self, batch: RecordBatch) {
        let (_, mut columns, _) = batch.into_parts();
        let values = columns.swap_remove(VALUE_COLUMN).to_data();
        drop(columns);
        let (_, _, _, _, mut buffers, _) = values.into_parts();
        if buffers.len() == 2
            && let Ok(bytes) = buffers.swap_remove(1).into_vec::<u8>()
        {
            self.0.lock().expect("value buffers lock").push(bytes);
        }
    }
}

/// A row group being encoded on the blocking pool.
struct EncodeJob {
    /// Record bytes it holds (see [`record_bytes`]), for the file size estimate.
    record_bytes: usize,
    task: JoinHandle<Result<Vec<ArrowColumnChunk>, ExportError>>,
}

pub struct PartitionParquetWriter {
    topic: Arc<str>,
    partition: i32,
    /// The file's schema (its `value` column as the export's [`ValueFormat`] asks).
    schema: SchemaRef,
    values: ValueFormat,
    file: SerializedFileWriter<PendingBytes>,
    columns: ArrowRowGroupWriterFactory,
    pending: PendingBytes,
    sink: FileSink,
    /// The row group being collected.
    row_group: RowGroupBuilder,
    value_buffers: ValueBuffers,
    /// Row groups being encoded, oldest first (the order they go into the file).
    encoding: VecDeque<EncodeJob>,
    max_encoding: usize,
    /// [`ROW_GROUP_BYTES`], smaller in tests.
    row_group_bytes: usize,
    row_groups_started: usize,
    /// Record bytes of the row groups already in the file: with the file's size, the
    /// compression ratio so far, which sizes the row groups not yet encoded.
    record_bytes_written: u64,
    summary: FileSummary,
}

impl PartitionParquetWriter {
    /// Starts a file on `sink`, its pages compressed with zstd at `zstd_level`.
    pub fn create(
        sink: FileSink,
        topic: &str,
        partition: i32,
        values: ValueFormat,
        zstd_level: i32,
    ) -> Result<Self, ExportError> {
        // Values are opaque payloads: no dictionary (hashing every value to find few repeats)
        // and no min/max statistics (nobody prunes row groups on payload bytes); zstd still
        // catches what repeats.
        let value = parquet::schema::types::ColumnPath::from("value");
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd(zstd_level)?))
            .set_column_dictionary_enabled(value.clone(), false)
            .set_column_statistics_enabled(value, EnabledStatistics::None)
            .set_created_by(format!("strata export {}", env!("CARGO_PKG_VERSION")))
            .build();
        let pending = PendingBytes::default();
        // The high-level writer puts the Arrow schema into the footer metadata; its low-level
        // parts let row groups be encoded elsewhere and appended here.
        let schema = schema(values);
        let (file, columns) = ArrowWriter::try_new(pending.clone(), schema.clone(), Some(props))?
            .into_serialized_writer()?;
        let value_buffers = ValueBuffers::default();
        Ok(Self {
            topic: topic.into(),
            partition,
            schema,
            values,
            file,
            columns,
            pending,
            sink,
            row_group: RowGroupBuilder::new(ROW_GROUP_BYTES, &value_buffers),
            value_buffers,
            encoding: VecDeque::new(),
            max_encoding: encode_jobs(),
            row_group_bytes: ROW_GROUP_BYTES,
            row_groups_started: 0,
            record_bytes_written: 0,
            summary: FileSummary {
                records: 0,
                offsets: None,
                timestamps: None,
                sha256: String::new(),
                bytes: 0,
            },
        })
    }

    /// Closes row groups at `bytes` of records instead of [`ROW_GROUP_BYTES`].
    #[cfg(test)]
    pub fn with_row_group_bytes(mut self, bytes: usize) -> Self {
        self.row_group_bytes = bytes;
        self.row_group = RowGroupBuilder::new(bytes, &self.value_buffers);
        self
    }

    /// An estimate of the final file size so far, for splitting by size: bytes written plus
    /// the records not yet encoded at the compression ratio seen so far (1 before the first row
    /// group).
    pub fn size_estimate(&self) -> u64 {
        let written = self.sink.bytes() + self.pending.len() as u64;
        let unencoded = self.row_group.record_bytes
            + self
                .encoding
                .iter()
                .map(|job| job.record_bytes)
                .sum::<usize>();
        let ratio = if self.record_bytes_written > 0 {
            written as f64 / self.record_bytes_written as f64
        } else {
            1.0
        };
        written + (unencoded as f64 * ratio) as u64
    }

    /// Appends records (in offset order). On an error the file is given up
    /// ([`FileSink::abort`]).
    pub async fn write(&mut self, records: Vec<ExportRecord>) -> Result<(), ExportError> {
        let written = self.append_records(records).await;
        if written.is_err() {
            self.sink.abort().await;
        }
        written
    }

    async fn append_records(&mut self, records: Vec<ExportRecord>) -> Result<(), ExportError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let s = &mut self.summary;
        s.records += records.len() as u64;
        s.offsets = Some(
            s.offsets
                .map_or((first.offset, last.offset), |(f, _)| (f, last.offset)),
        );
        for r in &records {
            s.timestamps = Some(match s.timestamps {
                None => (r.timestamp, r.timestamp),
                Some((lo, hi)) => (lo.min(r.timestamp), hi.max(r.timestamp)),
            });
            self.row_group.append(r)?;
        }
        // The records' batches go now: the row group holds its own copy.
        drop(records);
        if self.row_group.record_bytes >= self.row_group_bytes
            || self.row_group.rows >= ROW_GROUP_ROWS
        {
            // At most `max_encoding` row groups in memory besides the one being collected.
            while self.encoding.len() >= self.max_encoding {
                self.append_oldest().await?;
            }
            self.start_encoding()?;
        }
        while self
            .encoding
            .front()
            .is_some_and(|job| job.task.is_finished())
        {
            self.append_oldest().await?;
        }
        Ok(())
    }

    /// Writes the footer and makes the file visible (see [`FileSink`]); on an error the file
    /// is given up.
    pub async fn finish(mut self) -> Result<FileSummary, ExportError> {
        match self.complete_file().await {
            Ok(()) => Ok(self.summary),
            Err(e) => {
                self.sink.abort().await;
                Err(e)
            }
        }
    }

    /// Gives the file up (an error elsewhere stopped the export): nothing is left of it.
    pub async fn abort(mut self) {
        for job in self.encoding.drain(..) {
            job.task.abort();
        }
        self.sink.abort().await;
    }

    async fn complete_file(&mut self) -> Result<(), ExportError> {
        self.start_encoding()?;
        while !self.encoding.is_empty() {
            self.append_oldest().await?;
        }
        self.file.finish()?;
        self.hand_pending_to_sink().await?;
        self.sink.complete().await?;
        let (sha256, bytes) = self
            .sink
            .digest()
            .ok_or_else(|| ExportError::Destination("file sink did not complete".into()))?;
        self.summary.sha256 = sha256;
        self.summary.bytes = bytes;
        Ok(())
    }

    /// Sends the collected row group to the blocking pool to be encoded.
    fn start_encoding(&mut self) -> Result<(), ExportError> {
        if self.row_group.rows == 0 {
            return Ok(());
        }
        let writers = self
            .columns
            .create_column_writers(self.row_groups_started)?;
        self.row_groups_started += 1;
        let row_group = std::mem::replace(
            &mut self.row_group,
            RowGroupBuilder::new(self.row_group_bytes, &self.value_buffers),
        );
        let record_bytes = row_group.record_bytes;
        let batch = row_group.finish(&self.topic, self.partition)?;
        let typed = TypedValues {
            schema: self.schema.clone(),
            format: self.values,
            topic: self.topic.clone(),
            partition: self.partition,
        };
        let value_buffers = self.value_buffers.clone();
        let task = tokio::task::spawn_blocking(move || {
            let batch = typed.apply(batch)?;
            let chunks = encode_row_group(&batch, writers)?;
            value_buffers.give_back(batch);
            Ok(chunks)
        });
        self.encoding.push_back(EncodeJob { record_bytes, task });
        Ok(())
    }

    /// Waits for the oldest row group being encoded and appends it to the file.
    async fn append_oldest(&mut self) -> Result<(), ExportError> {
        let Some(job) = self.encoding.pop_front() else {
            return Ok(());
        };
        let chunks = job.task.await.map_err(|e| {
            ExportError::Parquet(parquet::errors::ParquetError::External(Box::new(e)))
        })??;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.record_bytes_written += job.record_bytes as u64;
        self.hand_pending_to_sink().await
    }

    async fn hand_pending_to_sink(&mut self) -> Result<(), ExportError> {
        let bytes = self.pending.take();
        if !bytes.is_empty() {
            self.sink.write(Bytes::from(bytes)).await?;
        }
        Ok(())
    }
}

/// What a record adds to a row group: its keys, values and headers, plus the fixed columns.
fn record_bytes(r: &ExportRecord) -> usize {
    let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
    let headers: usize = r.headers.iter().map(|(k, v)| k.len() + len(v)).sum();
    len(&r.key) + len(&r.value) + headers + 32
}

/// Encodes one row group's columns (CPU-bound: runs on the blocking pool).
fn encode_row_group(
    batch: &RecordBatch,
    mut writers: Vec<ArrowColumnWriter>,
) -> Result<Vec<ArrowColumnChunk>, ExportError> {
    let mut next_writer = writers.iter_mut();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column)? {
            next_writer
                .next()
                .ok_or_else(|| ExportError::Destination("more Parquet leaves than columns".into()))?
                .write(&leaf)?;
        }
    }
    Ok(writers
        .into_iter()
        .map(ArrowColumnWriter::close)
        .collect::<Result<_, _>>()?)
}

/// Turns a collected row group (values as bytes) into the file's schema: unchanged for
/// [`ValueFormat::Binary`], values checked and typed as text for the others. Runs on the
/// blocking pool with the encoding (JSON parsing costs about what compression does).
struct TypedValues {
    schema: SchemaRef,
    format: ValueFormat,
    topic: Arc<str>,
    partition: i32,
}

impl TypedValues {
    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, ExportError> {
        if self.format == ValueFormat::Binary {
            return Ok(batch);
        }
        let values = batch.column(VALUE_COLUMN).as_binary::<i32>();
        let offsets = batch.column(OFFSET_COLUMN).as_primitive::<Int64Type>();
        let bad = |row: usize, problem: String| ExportError::BadValue {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: offsets.value(row),
            format: self.format,
            problem,
        };
        if self.format == ValueFormat::Json {
            for (row, value) in values.iter().enumerate() {
                if let Some(value) = value {
                    serde_json::from_slice::<serde::de::IgnoredAny>(value)
                        .map_err(|e| bad(row, e.to_string()))?;
                }
            }
        }
        let text = StringArray::try_from_binary(values.clone()).map_err(|_| {
            // The array check does not say which value failed: find it for the error.
            let row = values
                .iter()
                .position(|v| v.is_some_and(|v| std::str::from_utf8(v).is_err()))
                .unwrap_or(0);
            let problem = match std::str::from_utf8(values.value(row)) {
                Err(e) => e.to_string(),
                Ok(_) => "invalid UTF-8".to_string(),
            };
            bad(row, problem)
        })?;
        let mut columns = batch.columns().to_vec();
        columns[VALUE_COLUMN] = Arc::new(text);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The Arrow columns of one row group, appended to record by record.
struct RowGroupBuilder {
    rows: usize,
    /// [`record_bytes`] of the rows so far.
    record_bytes: usize,
    offsets: Vec<i64>,
    timestamps: Vec<i64>,
    timestamp_types: StringBuilder,
    keys: BinaryBuilder,
    values: ValueColumn,
    headers: ListBuilder<StructBuilder>,
    producer_ids: Vec<i64>,
    claims: StructBuilder,
}

impl RowGroupBuilder {
    /// A row group that closes at `row_group_bytes` of records.
    fn new(row_group_bytes: usize, value_buffers: &ValueBuffers) -> Self {
        Self {
            rows: 0,
            record_bytes: 0,
            offsets: Vec::new(),
            timestamps: Vec::new(),
            timestamp_types: StringBuilder::new(),
            keys: BinaryBuilder::new(),
            // Room for a full row group plus the read chunk that completes it: growing a
            // buffer this size by doubling would copy it about twice over.
            values: ValueColumn::new(
                value_buffers.take(row_group_bytes + super::reader::READ_CHUNK_BYTES),
            ),
            headers: ListBuilder::new(StructBuilder::new(
                header_fields(),
                vec![
                    Box::new(StringBuilder::new()),
                    Box::new(BinaryBuilder::new()),
                ],
            ))
            .with_field(Arc::new(header_item())),
            producer_ids: Vec::new(),
            claims: StructBuilder::new(
                claim_fields(),
                vec![
                    Box::new(StringBuilder::new()),
                    Box::new(StringBuilder::new()),
                    Box::new(Int64Builder::new()),
                    Box::new(StringBuilder::new()),
                ],
            ),
        }
    }

    fn append(&mut self, r: &ExportRecord) -> Result<(), ExportError> {
        self.values.append(r.value.as_deref())?;
        self.rows += 1;
        self.record_bytes += record_bytes(r);
        self.offsets.push(r.offset);
        self.timestamps.push(r.timestamp);
        self.timestamp_types.append_value(r.timestamp_type.as_str());
        self.keys.append_option(r.key.as_deref());
        let entries = self.headers.values();
        for (k, v) in &r.headers {
            entries
                .field_builder::<StringBuilder>(0)
                .expect("utf8 key builder")
                .append_value(k);
            entries
                .field_builder::<BinaryBuilder>(1)
                .expect("binary value builder")
                .append_option(v.as_deref());
            entries.append(true);
        }
        self.headers.append(true);
        self.producer_ids.push(r.producer_id);
        append_claim(&mut self.claims, r.claim.as_ref());
        Ok(())
    }

    fn finish(mut self, topic: &str, partition: i32) -> Result<RecordBatch, ExportError> {
        let n = self.rows;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![topic; n])),
            Arc::new(Int32Array::from(vec![partition; n])),
            Arc::new(Int64Array::from(self.offsets)),
            Arc::new(TimestampMillisecondArray::from(self.timestamps).with_timezone("UTC")),
            Arc::new(self.timestamp_types.finish()),
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()?),
            Arc::new(self.headers.finish()),
            Arc::new(Int64Array::from(self.producer_ids)),
            Arc::new(self.claims.finish()),
        ];
        Ok(RecordBatch::try_new(schema(ValueFormat::Binary), columns)?)
    }
}

/// The `value` column of a row group, built as `BinaryBuilder` does but on a byte buffer that
/// is taken from, and after encoding goes back to, [`ValueBuffers`].
struct ValueColumn {
    bytes: Vec<u8>,
    /// End of each value in `bytes`, after a leading 0.
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl ValueColumn {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn append(&mut self, value: Option<&[u8]>) -> Result<(), ExportError> {
        match value {
            Some(v) => {
                self.bytes.extend_from_slice(v);
                self.nulls.append_non_null();
            }
            None => self.nulls.append_null(),
        }
        // A Binary column addresses at most 2 GiB per row group: a row group closes at
        // ROW_GROUP_BYTES, so only values near max.message.bytes' own limit get here.
        let end = i32::try_from(self.bytes.len())
            .map_err(|_| ArrowError::OffsetOverflowError(self.bytes.len()))?;
        self.offsets.push(end);
        Ok(())
    }

    fn finish(mut self) -> Result<BinaryArray, ExportError> {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        Ok(BinaryArray::try_new(
            offsets,
            Buffer::from_vec(self.bytes),
            self.nulls.finish(),
        )?)
    }
}

/// One `claim` struct value: the ticket's fields, or null (children get placeholder values).
fn append_claim(builder: &mut StructBuilder, claim: Option<&ClaimFields>) {
    let (id, uri, size, sha256) = match claim {
        Some(c) => (
            c.id.as_str(),
            c.uri.as_str(),
            c.size as i64,
            c.sha256.as_str(),
        ),
        None => ("", "", 0, ""),
    };
    let text = |b: &mut StructBuilder, i: usize, v: &str| {
        b.field_builder::<StringBuilder>(i)
            .expect("utf8 claim field")
            .append_value(v)
    };
    text(builder, 0, id);
    text(builder, 1, uri);
    builder
        .field_builder::<Int64Builder>(2)
        .expect("int64 claim size")
        .append_value(size);
    text(builder, 3, sha256);
    builder.append(claim.is_some());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::TimestampKind;

    fn record(offset: i64, value: Option<&'static [u8]>) -> ExportRecord {
        ExportRecord {
            offset,
            timestamp: 1_700_000_000_000 + offset,
            timestamp_type: TimestampKind::CreateTime,
            key: None,
            value: value.map(Bytes::from_static),
            headers: vec![],
            producer_id: -1,
            claim: None,
        }
    }

    /// After encoding, a row group's value bytes go back to the pool and the next row group
    /// fills the same allocation, in both the binary and the text value formats.
    #[test]
    fn encoded_value_bytes_are_filled_again_by_the_next_row_group() {
        for format in [ValueFormat::Binary, ValueFormat::Utf8] {
            let buffers = ValueBuffers::default();
            let mut row_group = RowGroupBuilder::new(1 << 10, &buffers);
            for (offset, value) in [(0, Some(&b"{\"a\":1}"[..])), (1, None), (2, Some(b"[2]"))] {
                row_group.append(&record(offset, value)).unwrap();
            }
            let batch = row_group.finish("t", 0).unwrap();
            let typed = TypedValues {
                schema: schema(format),
                format,
                topic: "t".into(),
                partition: 0,
            }
            .apply(batch)
            .unwrap();
            let values = typed.column(VALUE_COLUMN).to_data();
            assert_eq!(values.buffers()[1].as_slice(), b"{\"a\":1}[2]");
            let allocation = values.buffers()[1].as_ptr();
            drop(values);
            buffers.give_back(typed);
            let reused = buffers.take(1 << 10);
            assert_eq!(
                reused.as_ptr(),
                allocation,
                "{format:?}: the same allocation"
            );
            assert!(reused.is_empty() && reused.capacity() >= 1 << 10);
        }
    }
}
