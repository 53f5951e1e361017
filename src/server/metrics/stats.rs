//! The engine statistics of every instance as metrics, read when `/metrics` is scraped:
//! one series per [`Stats`] field in [`STAT_SERIES`], plus tables and bytes per level.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::engine::Stats;
use crate::instance::{Instances, Slot};

/// The state of every instance, read at scrape time.
#[derive(Debug)]
pub(super) struct EngineCollector {
    /// Every configured instance, with its statistics when it is open.
    instances: Vec<(String, Option<Stats>)>,
}

impl EngineCollector {
    pub(super) fn read(instances: &Instances) -> EngineCollector {
        EngineCollector {
            instances: instances
                .slots()
                .map(|(name, slot)| {
                    let stats = match slot {
                        Slot::Ready(instance) => Some(instance.db().stats()),
                        Slot::Unavailable(_) => None,
                    };
                    (name.to_string(), stats)
                })
                .collect(),
        }
    }

    fn open(&self) -> impl Iterator<Item = (&str, &Stats)> {
        self.instances
            .iter()
            .filter_map(|(name, stats)| stats.as_ref().map(|s| (name.as_str(), s)))
    }
}

/// A metric with one value per open instance, read from its [`Stats`].
struct StatSeries {
    name: &'static str,
    help: &'static str,
    bytes: bool,
    counter: bool,
    value: fn(&Stats) -> u64,
}

const fn gauge(name: &'static str, help: &'static str, value: fn(&Stats) -> u64) -> StatSeries {
    StatSeries {
        name,
        help,
        bytes: false,
        counter: false,
        value,
    }
}

const fn counter(name: &'static str, help: &'static str, value: fn(&Stats) -> u64) -> StatSeries {
    StatSeries {
        name,
        help,
        bytes: false,
        counter: true,
        value,
    }
}

const fn bytes(series: StatSeries) -> StatSeries {
    StatSeries {
        bytes: true,
        ..series
    }
}

/// The per-instance metrics read from [`Stats`]; byte metrics get the `_bytes` suffix
/// and counters `_total` when encoded.
const STAT_SERIES: &[StatSeries] = &[
    bytes(gauge("lsm_table", "Bytes of live tables on disk", |s| {
        s.table_bytes
    })),
    gauge(
        "lsm_table_entries",
        "Versions (puts and tombstones) stored in live tables",
        |s| s.table_entries,
    ),
    gauge(
        "lsm_table_tombstones",
        "Tombstones stored in live tables",
        |s| s.table_deletions,
    ),
    bytes(gauge(
        "lsm_memtable",
        "Bytes held by the active memtable (estimate)",
        |s| s.memtable_bytes,
    )),
    gauge(
        "lsm_memtable_entries",
        "Versions in the active memtable",
        |s| s.memtable_entries,
    ),
    gauge(
        "lsm_immutable_memtables",
        "Frozen memtables waiting for their flush",
        |s| s.immutable_memtables,
    ),
    bytes(gauge(
        "lsm_immutable_memtable",
        "Bytes held by frozen memtables (estimate)",
        |s| s.immutable_memtable_bytes,
    )),
    gauge("lsm_wal_segments", "WAL segment files", |s| s.wal_segments),
    bytes(gauge("lsm_wal", "Bytes in WAL segment files", |s| {
        s.wal_bytes
    })),
    gauge(
        "lsm_approximate_keys",
        "Upper bound on live keys (every version in memtables and tables)",
        |s| s.approximate_keys,
    ),
    gauge(
        "lsm_last_sequence",
        "Sequence number of the latest acknowledged write",
        |s| s.last_seq,
    ),
    gauge(
        "lsm_quarantined_tables",
        "Tables moved to quarantine/ because they failed their checks",
        |s| s.quarantined.len() as u64,
    ),
    gauge(
        "lsm_background_error",
        "1 when a background flush or compaction failed and writes are refused, else 0",
        |s| u64::from(s.background_error.is_some()),
    ),
    counter("lsm_writes", "Write batches acknowledged since open", |s| {
        s.writes
    }),
    counter(
        "lsm_wal_appends",
        "WAL appends (group commits) since open",
        |s| s.wal_appends,
    ),
    counter("lsm_wal_syncs", "WAL fsyncs since open", |s| s.wal_syncs),
    counter(
        "lsm_flushes",
        "Memtables flushed to tables since open",
        |s| s.flushes,
    ),
    bytes(counter(
        "lsm_flush_written",
        "Bytes of tables written by flushes since open",
        |s| s.flush_bytes_written,
    )),
    counter(
        "lsm_write_stalls",
        "Times writers stopped (too many frozen memtables, or L0 at l0_stop) since open",
        |s| s.write_stalls,
    ),
    counter(
        "lsm_write_slowdowns",
        "Write groups delayed because L0 reached l0_slowdown since open",
        |s| s.write_slowdowns,
    ),
    counter("lsm_compactions", "Compactions run since open", |s| {
        s.compactions
    }),
    bytes(counter(
        "lsm_compaction_read",
        "Bytes of tables read by compactions since open",
        |s| s.compaction_bytes_read,
    )),
    bytes(counter(
        "lsm_compaction_written",
        "Bytes of tables written by compactions since open",
        |s| s.compaction_bytes_written,
    )),
    counter(
        "lsm_blocks_read",
        "Data blocks read, from the block cache or disk, since open",
        |s| s.blocks_read,
    ),
    counter(
        "lsm_blocks_read_from_disk",
        "Data blocks read from disk (block cache misses) since open",
        |s| s.blocks_read_from_disk,
    ),
];

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut up = encoder.encode_descriptor(
            "lsm_instance_up",
            "1 when the instance is open and serving, 0 when it could not be opened.",
            None,
            MetricType::Gauge,
        )?;
        for (name, stats) in &self.instances {
            let labels = [("instance", name.as_str())];
            ConstGauge::new(i64::from(stats.is_some())).encode(up.encode_family(&labels)?)?;
        }

        let mut tables = encoder.encode_descriptor(
            "lsm_tables",
            "Live tables in each level (L0 is level 0).",
            None,
            MetricType::Gauge,
        )?;
        for (name, stats) in self.open() {
            for (level, count) in stats.tables_per_level.iter().enumerate() {
                let level = level.to_string();
                let labels = [("instance", name), ("level", level.as_str())];
                ConstGauge::new(*count).encode(tables.encode_family(&labels)?)?;
            }
        }

        let mut bloom = encoder.encode_descriptor(
            "lsm_bloom_filter_checks",
            "Point lookups checked against a table's bloom filter since open: result is negative (the table was skipped), true_positive or false_positive.",
            None,
            MetricType::Counter,
        )?;
        for (name, stats) in self.open() {
            for (result, count) in [
                ("negative", stats.bloom_negatives),
                ("true_positive", stats.bloom_true_positives),
                ("false_positive", stats.bloom_false_positives),
            ] {
                let labels = [("instance", name), ("result", result)];
                ConstCounter::new(count).encode(bloom.encode_family(&labels)?)?;
            }
        }

        for series in STAT_SERIES {
            let unit = series.bytes.then_some(Unit::Bytes);
            let kind = if series.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let help = format!("{}.", series.help);
            let mut metric = encoder.encode_descriptor(series.name, &help, unit.as_ref(), kind)?;
            for (name, stats) in self.open() {
                let labels = [("instance", name)];
                let value = (series.value)(stats);
                let family = metric.encode_family(&labels)?;
                if series.counter {
                    ConstCounter::new(value).encode(family)?;
                } else {
                    ConstGauge::new(value).encode(family)?;
                }
            }
        }

        for (metric_name, help, value) in [
            (
                "lsm_write_amplification",
                "Bytes written to tables (flushes and compactions) per byte flushed, since open.",
                (|s: &Stats| s.write_amplification) as fn(&Stats) -> f64,
            ),
            (
                "lsm_space_amplification",
                "Bytes of all tables per byte of the deepest non-empty level.",
                |s: &Stats| s.space_amplification,
            ),
        ] {
            let mut metric =
                encoder.encode_descriptor(metric_name, help, None, MetricType::Gauge)?;
            for (name, stats) in self.open() {
                let labels = [("instance", name)];
                ConstGauge::new(value(stats)).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
