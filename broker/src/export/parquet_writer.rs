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
//!
//! Row groups close at [`ROW_GROUP_BYTES`] of buffered data or [`ROW_GROUP_ROWS`] rows, pages are
//! zstd-compressed. The file is written as `<name>.tmp`, fsynced and renamed by [`finish`].
//!
//! [`finish`]: PartitionParquetWriter::finish

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder, StructBuilder};
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{ExportError, ExportRecord};

pub const ROW_GROUP_BYTES: usize = 128 << 20;
pub const ROW_GROUP_ROWS: usize = 1 << 20;

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
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
    ]))
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub path: PathBuf,
    pub records: u64,
    /// First and last exported offset; `None` for an empty file.
    pub offsets: Option<(i64, i64)>,
    /// Smallest and largest record timestamp; `None` for an empty file.
    pub timestamps: Option<(i64, i64)>,
}

pub struct PartitionParquetWriter {
    topic: String,
    partition: i32,
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    summary: FileSummary,
}

impl PartitionParquetWriter {
    /// Creates `<path>.tmp`; nothing exists at `path` until [`Self::finish`].
    pub fn create(path: &Path, topic: &str, partition: i32) -> Result<Self, ExportError> {
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(ExportError::io("creating", &tmp))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_created_by(format!("strata export {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema(), Some(props))?;
        Ok(Self {
            topic: topic.to_string(),
            partition,
            path: path.to_path_buf(),
            tmp,
            writer,
            summary: FileSummary {
                path: path.to_path_buf(),
                records: 0,
                offsets: None,
                timestamps: None,
            },
        })
    }

    /// Appends records (in offset order).
    pub fn write(&mut self, records: &[ExportRecord]) -> Result<(), ExportError> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = self.to_arrow(records)?;
        self.writer.write(&batch)?;
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

    /// Closes the file (footer), fsyncs it and renames it into place.
    pub fn finish(self) -> Result<FileSummary, ExportError> {
        let file = self.writer.into_inner()?;
        file.sync_all()
            .map_err(ExportError::io("syncing", &self.tmp))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(ExportError::io("renaming", &self.tmp))?;
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
        for r in records {
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
        ];
        Ok(RecordBatch::try_new(schema(), columns)?)
    }
}
