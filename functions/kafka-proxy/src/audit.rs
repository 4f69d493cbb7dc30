//! `GET /v1/audit`: the audit log's entries (Manage on the namespace), filtered by time,
//! hub, principal and action, in the order they were written, with paging by offset.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hubgate_server::access::Grant;
use hubgate_server::audit;
use hubgate_server::http::{ApiError, ApiJson, ApiQuery};
use serde::{Deserialize, Serialize};

use crate::AppState;

/// Entries answered at most.
const MAX_LIMIT: usize = 1000;
/// Records read from Kafka per round while looking for matches.
const SCAN: usize = 1000;

/// `?since_ms=&until_ms=&hub=&principal=&action=&from_offset=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Entries written at or after this time (ms since the epoch).
    since_ms: Option<i64>,
    /// Entries written before this time.
    until_ms: Option<i64>,
    hub: Option<String>,
    principal: Option<String>,
    action: Option<String>,
    /// Start reading here (the `next_offset` of the previous page).
    from_offset: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Listed {
    offset: i64,
    #[serde(flatten)]
    entry: hubgate_core::audit::Entry,
}

#[derive(Debug, Serialize)]
struct AuditPage {
    entries: Vec<Listed>,
    /// Where the next page starts (`from_offset`); the end of the log when nothing is left.
    next_offset: i64,
}

pub(crate) async fn list(
    State(s): AppState,
    _grant: Grant,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let Some(log) = s.audit.log() else {
        return Err(ApiError::NotFound(
            "the audit log is off: set [audit] key to turn it on".into(),
        ));
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be from 1 to {MAX_LIMIT}"
        )));
    }
    let mut offset = q.from_offset.unwrap_or(0).max(0);
    if let Some(since) = q.since_ms {
        match audit::offset_at(&s.kafka, log.topic(), since).await {
            Ok(at) => offset = offset.max(at),
            Err(hubgate_server::KafkaError::UnknownTopic(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let wanted = |e: &hubgate_core::audit::Entry| {
        let time = i64::try_from(e.action.time_ms).unwrap_or(i64::MAX);
        q.since_ms.is_none_or(|t| time >= t)
            && q.until_ms.is_none_or(|t| time < t)
            && q.hub.as_deref().is_none_or(|h| {
                e.action
                    .hub
                    .as_deref()
                    .is_some_and(|eh| eh.eq_ignore_ascii_case(h))
            })
            && q.principal
                .as_deref()
                .is_none_or(|p| e.action.principal == p)
            && q.action.as_deref().is_none_or(|a| e.action.action == a)
    };
    let mut entries = Vec::new();
    'scan: loop {
        let read = audit::read(&s.kafka, log.topic(), offset, SCAN).await?;
        let Some(last) = read.last().map(|r| r.0) else {
            break;
        };
        for (at, entry) in read {
            offset = at + 1;
            // Records that are not entries are for `hubgate audit verify` to report.
            if let Ok(entry) = entry
                && wanted(&entry)
            {
                entries.push(Listed { offset: at, entry });
                if entries.len() == limit {
                    break 'scan;
                }
            }
        }
        offset = offset.max(last + 1);
    }
    Ok(ApiJson(AuditPage {
        entries,
        next_offset: offset,
    })
    .into_response())
}
