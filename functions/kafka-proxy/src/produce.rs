//! The one produce path of both APIs: records already assigned to partitions are grouped
//! per partition, each group written with one Kafka request (all groups concurrently), and
//! the result reported per record, in request order.

use std::collections::BTreeMap;

use futures::future::join_all;
use hubgate_server::{ApiError, Kafka};
use rskafka::record::Record;

use crate::records::OffsetResult;

/// Refuses (413) records whose data (keys, values and headers: what Kafka stores) is more
/// than `max_bytes` together; both APIs check this before anything else asks Kafka.
pub(crate) fn check_size<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    max_bytes: usize,
) -> Result<(), ApiError> {
    let data: usize = records
        .into_iter()
        .map(hubgate_server::kafka::record_data_bytes)
        .sum();
    if data > max_bytes {
        return Err(ApiError::TooLarge(max_bytes));
    }
    Ok(())
}

/// Writes `records` (partition, record) to `topic`. `Ok` only when Kafka acknowledged every
/// record. If nothing was written, the Kafka error; if some partitions were written and
/// others not, [`ApiError::PartialProduce`] with every record's outcome.
pub(crate) async fn produce(
    kafka: &Kafka,
    topic: &str,
    records: Vec<(i32, Record)>,
) -> Result<Vec<OffsetResult>, ApiError> {
    // All for one partition (one record, a partition key, a device's batch): one write, no
    // grouping.
    if let Some(&(partition, _)) = records.first()
        && records.iter().all(|(p, _)| *p == partition)
    {
        let records = records.into_iter().map(|(_, r)| r).collect();
        let offsets = kafka.produce(topic, partition, records).await?;
        return Ok(offsets
            .into_iter()
            .map(|offset| OffsetResult::written(partition, offset))
            .collect());
    }
    let total = records.len();
    let mut groups: BTreeMap<i32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
    for (i, (partition, record)) in records.into_iter().enumerate() {
        let g = groups.entry(partition).or_default();
        g.0.push(i);
        g.1.push(record);
    }
    let results = join_all(groups.into_iter().map(
        |(partition, (positions, records))| async move {
            (
                partition,
                positions,
                kafka.produce(topic, partition, records).await,
            )
        },
    ))
    .await;

    let mut offsets: Vec<Option<OffsetResult>> = vec![None; total];
    let mut first_error = None;
    let mut any_ok = false;
    for (partition, positions, result) in results {
        match result {
            Ok(got) => {
                any_ok = true;
                for (pos, offset) in positions.into_iter().zip(got) {
                    offsets[pos] = Some(OffsetResult::written(partition, offset));
                }
            }
            Err(e) => {
                let (_, code) = hubgate_server::http::kafka_status(&e);
                for pos in positions {
                    offsets[pos] = Some(OffsetResult {
                        partition,
                        offset: None,
                        error_code: Some(code),
                        error: Some(e.client_message()),
                    });
                }
                first_error.get_or_insert(e);
            }
        }
    }
    let offsets: Vec<OffsetResult> = offsets.into_iter().flatten().collect();
    match first_error {
        None => Ok(offsets),
        Some(e) if !any_ok => Err(e.into()),
        Some(source) => Err(ApiError::PartialProduce {
            source,
            offsets: serde_json::to_value(&offsets).unwrap_or_default(),
        }),
    }
}
