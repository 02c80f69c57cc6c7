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
//! | value          | binary, null for a tombstone           |
//! | headers        | list<struct<key utf8, value binary>>   |
//! | producer_id    | int64 (-1 without idempotence)         |
//! | claim          | struct<id, uri utf8, size int64, sha256 utf8>, null unless the record is a claim ticket |
//!
//! Row groups close at [`ROW_GROUP_BYTES`] of buffered data or [`ROW_GROUP_ROWS`] rows, pages are
//! zstd-compressed. Bytes go to a [`FileSink`], which makes the file visible (rename, or
//! multipart completion) only in [`finish`](PartitionParquetWriter::finish).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
};
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::destination::FileSink;
use super::{ClaimFields, ExportError, ExportRecord};

/// Bounds the row group held in memory while it is built. The peak is about twice this: the
/// encoded row group is copied into the async writer's buffer when it is flushed. 16 MiB keeps
/// a 2 GiB export's peak RSS under its 256 MiB budget (32 MiB measured 270-290 MiB) and is still
/// a large row group for analytics readers.
pub const ROW_GROUP_BYTES: usize = 16 << 20;
pub const ROW_GROUP_ROWS: usize = 1 << 20;

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

/// The export schema (see the module doc).
pub fn schema() -> SchemaRef {
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
        Field::new("value", DataType::Binary, true),
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

pub struct PartitionParquetWriter {
    topic: String,
    partition: i32,
    writer: AsyncArrowWriter<FileSink>,
    summary: FileSummary,
}

impl PartitionParquetWriter {
    /// Starts a file on `sink`.
    pub fn create(sink: FileSink, topic: &str, partition: i32) -> Result<Self, ExportError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_created_by(format!("strata export {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = AsyncArrowWriter::try_new(sink, schema(), Some(props))?;
        Ok(Self {
            topic: topic.to_string(),
            partition,
            writer,
            summary: FileSummary {
                records: 0,
                offsets: None,
                timestamps: None,
                sha256: String::new(),
                bytes: 0,
            },
        })
    }

    /// Bytes of the file so far: written out plus the row group being built (an estimate of
    /// the final size, for splitting by size).
    pub fn size_estimate(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Appends records (in offset order).
    pub async fn write(&mut self, records: &[ExportRecord]) -> Result<(), ExportError> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = self.to_arrow(records)?;
        self.writer.write(&batch).await?;
        let s = &mut self.summary;
        s.records += records.len() as u64;
        let (first, last) = (records[0].offset, records[records.len() - 1].offset);
        s.offsets = Some(s.offsets.map_or((first, last), |(f, _)| (f, last)));
        for r in records {
            s.timestamps = Some(match s.timestamps {
                None => (r.timestamp, r.timestamp),
                Some((lo, hi)) => (lo.min(r.timestamp), hi.max(r.timestamp)),
            });
        }
        Ok(())
    }

    /// Writes the footer and makes the file visible (see [`FileSink`]).
    pub async fn finish(mut self) -> Result<FileSummary, ExportError> {
        self.writer.finish().await?;
        let sink = self.writer.into_inner();
        let (sha256, bytes) = sink
            .digest()
            .ok_or_else(|| ExportError::Destination("file sink did not complete".into()))?;
        self.summary.sha256 = sha256;
        self.summary.bytes = bytes;
        Ok(self.summary)
    }

    fn to_arrow(&self, records: &[ExportRecord]) -> Result<RecordBatch, ExportError> {
        let n = records.len();
        let mut keys = BinaryBuilder::new();
        let mut values = BinaryBuilder::new();
        let mut headers = ListBuilder::new(StructBuilder::new(
            header_fields(),
            vec![
                Box::new(StringBuilder::new()),
                Box::new(BinaryBuilder::new()),
            ],
        ))
        .with_field(Arc::new(header_item()));
        let mut claims = StructBuilder::new(
            claim_fields(),
            vec![
                Box::new(StringBuilder::new()),
                Box::new(StringBuilder::new()),
                Box::new(Int64Builder::new()),
                Box::new(StringBuilder::new()),
            ],
        );
        for r in records {
            append_claim(&mut claims, r.claim.as_ref());
            keys.append_option(r.key.as_deref());
            values.append_option(r.value.as_deref());
            let entries = headers.values();
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
            headers.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.topic.as_str(); n])),
            Arc::new(Int32Array::from(vec![self.partition; n])),
            Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.offset),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(records.iter().map(|r| r.timestamp))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(
                records.iter().map(|r| r.timestamp_type.as_str()),
            )),
            Arc::new(keys.finish()),
            Arc::new(values.finish()),
            Arc::new(headers.finish()),
            Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.producer_id),
            )),
            Arc::new(claims.finish()),
        ];
        Ok(RecordBatch::try_new(schema(), columns)?)
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
