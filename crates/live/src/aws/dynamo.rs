//! The noise-control state on a DynamoDB table (`crate::noise_store::NoiseStore`), shared by
//! every instance of the function.
//!
//! One table, partition key `pk` (string), three kinds of item:
//!
//! * `problem#<id>`: the dedup window (`alerted_at`, `suppressed`, `first_seen`, `last_seen`,
//!   `occurrences`, `is_open`), what was alerted (`alerted`, `message_id`, `subject`), the
//!   event that exposed it (`event`, `event_index`), a pending summary entry (`pending`) and
//!   the last re-check (`checked_at`);
//! * `digest#<day>`: the day's counters (`n:<counter>`) and `published_at` once its digest
//!   went out;
//! * `rate#<topic>#<minute>`: messages sent to the topic in that minute (`sent`).
//!
//! Every item carries `expires_at`, the table's TTL attribute. Every write that decides
//! something is conditional (`ConditionExpression`): the alert is claimed only if none went
//! out within the window, so two instances that see the same burst publish once
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html>);
//! a repeat is counted only while the window holds; a digest is claimed once per day; the
//! rate allowance is taken only below the limit.

use std::collections::{BTreeMap, HashMap};

use auditor::noise::messages::{Alerted, SummaryItem};
use auditor::noise::window::ProblemState;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;

use super::read_error;
use crate::noise_store::{Claim, NoiseStore, Occurrence, StoredProblem};
use crate::ports::ReadError;

/// How long a problem is kept after its last occurrence (its TTL), at least.
const PROBLEM_TTL: u64 = 30 * 86_400;

type Item = HashMap<String, AttributeValue>;

/// The state on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_n(item: &Item, k: &str) -> Option<u64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn is_condition_failed(e: &ReadError) -> bool {
    matches!(e, ReadError::Service { code, .. } if code == "ConditionalCheckFailedException")
}

/// One `UpdateItem`: its expressions and placeholders.
struct Update<'a> {
    pk: String,
    expr: &'a str,
    cond: Option<&'a str>,
    names: &'a [(&'a str, &'a str)],
    values: Vec<(&'a str, AttributeValue)>,
    return_old: bool,
}

impl DynamoStore {
    /// A store on `table` with the function's own credentials.
    pub fn new(config: &SdkConfig, table: &str) -> DynamoStore {
        DynamoStore {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.to_owned(),
        }
    }

    /// `Ok(None)` when the condition failed; the old item when asked for.
    async fn update(&self, u: Update<'_>) -> Result<Option<Item>, ReadError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(u.pk))
            .update_expression(u.expr);
        if let Some(c) = u.cond {
            req = req.condition_expression(c);
        }
        for (k, v) in u.names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in u.values {
            req = req.expression_attribute_values(k, v);
        }
        if u.return_old {
            req = req.return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        }
        match req.send().await.map_err(read_error) {
            Ok(out) => Ok(Some(out.attributes().cloned().unwrap_or_default())),
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn problem(item: &Item) -> Option<StoredProblem> {
        let id = get_s(item, "pk")?.strip_prefix("problem#")?.to_owned();
        let mut alerted: Alerted = get_s(item, "alerted")
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default();
        alerted.message_id = get_s(item, "message_id").map(str::to_owned);
        alerted.subject = get_s(item, "subject").map(str::to_owned);
        Some(StoredProblem {
            id,
            state: state_of(item),
            alerted,
            event: get_s(item, "event").map(|e| {
                (
                    e.to_owned(),
                    get_n(item, "event_index").unwrap_or(0) as usize,
                )
            }),
            pending: get_s(item, "pending").and_then(|p| serde_json::from_str(p).ok()),
            checked_at: get_n(item, "checked_at").unwrap_or(0),
        })
    }
}

fn state_of(item: &Item) -> ProblemState {
    ProblemState {
        first_seen: get_n(item, "first_seen").unwrap_or(0),
        last_seen: get_n(item, "last_seen").unwrap_or(0),
        alerted_at: get_n(item, "alerted_at"),
        suppressed: get_n(item, "suppressed").unwrap_or(0),
        occurrences: get_n(item, "occurrences").unwrap_or(0),
        open: matches!(item.get("is_open"), Some(AttributeValue::Bool(true))),
    }
}

const PROBLEM_NAMES: &[(&str, &str)] = &[
    ("#pk", "pk"),
    ("#as", "alerted_at"),
    ("#ls", "last_seen"),
    ("#fs", "first_seen"),
    ("#sup", "suppressed"),
    ("#occ", "occurrences"),
    ("#open", "is_open"),
    ("#ev", "event"),
    ("#evi", "event_index"),
    ("#chk", "checked_at"),
    ("#exp", "expires_at"),
    ("#al", "alerted"),
];

impl NoiseStore for DynamoStore {
    async fn occur(&self, c: &Claim<'_>) -> Result<Occurrence, ReadError> {
        let pk = format!("problem#{}", c.id);
        // `auditor::noise::window::alerted_within`: an alert at `alerted_at` holds the window
        // while `now < alerted_at + window`, that is while `alerted_at > now - window`.
        let window_start = c.now.saturating_sub(c.window);
        let alerted = serde_json::to_string(c.alerted).unwrap_or_default();
        // A claim and a repeat can race with another instance's; each retry sees the other's
        // write, so two rounds settle it.
        for _ in 0..3 {
            let claimed = self
                .update(Update {
                    pk: pk.clone(),
                    expr: "SET #as = :now, #ls = :now, #sup = :zero, #open = :t, #ev = :ev, #evi = :evi, #chk = :now, #exp = :ttl, #fs = if_not_exists(#fs, :now), #al = if_not_exists(#al, :al) ADD #occ :one",
                    cond: Some("attribute_not_exists(#pk) OR #open = :f OR #as <= :ws"),
                    names: PROBLEM_NAMES,
                    values: vec![
                        (":now", n(c.now)),
                        (":zero", n(0)),
                        (":one", n(1)),
                        (":t", AttributeValue::Bool(true)),
                        (":f", AttributeValue::Bool(false)),
                        (":ev", s(c.event.0)),
                        (":evi", n(c.event.1 as u64)),
                        (":ttl", n(c.now + PROBLEM_TTL.max(c.window))),
                        (":al", s(alerted.clone())),
                        (":ws", n(window_start)),
                    ],
                    return_old: true,
                })
                .await?;
            if let Some(old) = claimed {
                let previous = (!old.is_empty()).then(|| state_of(&old));
                if previous.as_ref().is_some_and(|p| !p.open) {
                    // A closed problem that comes back is a new one: its own first sighting and
                    // alert.
                    self.update(Update {
                        pk: pk.clone(),
                        expr: "SET #fs = :now, #al = :al REMOVE #mid, #subj",
                        cond: None,
                        names: &[
                            ("#fs", "first_seen"),
                            ("#al", "alerted"),
                            ("#mid", "message_id"),
                            ("#subj", "subject"),
                        ],
                        values: vec![(":now", n(c.now)), (":al", s(alerted.clone()))],
                        return_old: false,
                    })
                    .await?;
                }
                return Ok(Occurrence::Publish { previous });
            }
            let counted = self
                .update(Update {
                    pk: pk.clone(),
                    expr: "SET #ls = :now ADD #sup :one, #occ :one",
                    cond: Some("#open = :t AND #as > :ws"),
                    names: &[
                        ("#ls", "last_seen"),
                        ("#sup", "suppressed"),
                        ("#occ", "occurrences"),
                        ("#open", "is_open"),
                        ("#as", "alerted_at"),
                    ],
                    values: vec![
                        (":now", n(c.now)),
                        (":one", n(1)),
                        (":t", AttributeValue::Bool(true)),
                        (":ws", n(window_start)),
                    ],
                    return_old: false,
                })
                .await?;
            if counted.is_some() {
                return Ok(Occurrence::Suppressed);
            }
        }
        Err(ReadError::Service {
            code: "ConditionalCheckFailedException".into(),
            message: Some(format!(
                "problem {}: the claim and the repeat count kept failing their conditions",
                c.id
            )),
        })
    }

    async fn release(
        &self,
        id: &str,
        claimed_at: u64,
        previous: Option<&ProblemState>,
    ) -> Result<(), ReadError> {
        let (alerted_at, open, suppressed) = match previous {
            Some(p) => (p.alerted_at.unwrap_or(0), p.open, p.suppressed),
            None => (0, false, 0),
        };
        self.update(Update {
            pk: format!("problem#{id}"),
            expr: "SET #as = :old, #open = :open ADD #sup :sup",
            cond: Some("#as = :claimed"),
            names: &[
                ("#as", "alerted_at"),
                ("#open", "is_open"),
                ("#sup", "suppressed"),
            ],
            values: vec![
                (":old", n(alerted_at)),
                (":open", AttributeValue::Bool(open)),
                (":sup", n(suppressed)),
                (":claimed", n(claimed_at)),
            ],
            return_old: false,
        })
        .await
        .map(drop)
    }

    async fn alerted(&self, id: &str, message_id: &str, subject: &str) -> Result<(), ReadError> {
        self.update(Update {
            pk: format!("problem#{id}"),
            expr: "SET #mid = :mid, #subj = :subj",
            cond: Some("attribute_exists(#pk) AND attribute_not_exists(#mid)"),
            names: &[("#pk", "pk"), ("#mid", "message_id"), ("#subj", "subject")],
            values: vec![(":mid", s(message_id)), (":subj", s(subject))],
            return_old: false,
        })
        .await
        .map(drop)
    }

    async fn pend(&self, id: &str, item: &SummaryItem) -> Result<(), ReadError> {
        self.update(Update {
            pk: format!("problem#{id}"),
            expr: "SET #pend = :p",
            cond: Some("attribute_exists(#pk)"),
            names: &[("#pk", "pk"), ("#pend", "pending")],
            values: vec![(":p", s(serde_json::to_string(item).unwrap_or_default()))],
            return_old: false,
        })
        .await
        .map(drop)
    }

    async fn take_rate(&self, topic: &str, now: u64, limit: u32) -> Result<bool, ReadError> {
        if limit == 0 {
            return Ok(true);
        }
        let minute = auditor::noise::messages::minute_of(now);
        Ok(self
            .update(Update {
                pk: format!("rate#{topic}#{minute}"),
                expr: "SET #exp = :ttl ADD #sent :one",
                cond: Some("attribute_not_exists(#sent) OR #sent < :limit"),
                names: &[("#exp", "expires_at"), ("#sent", "sent")],
                values: vec![
                    (":ttl", n(minute * 60 + 3_600)),
                    (":one", n(1)),
                    (":limit", n(u64::from(limit))),
                ],
                return_old: false,
            })
            .await?
            .is_some())
    }

    async fn count(&self, day: &str, counter: &str, by: u64) -> Result<(), ReadError> {
        let name = format!("n:{counter}");
        self.update(Update {
            pk: format!("digest#{day}"),
            expr: "SET #exp = if_not_exists(#exp, :ttl) ADD #c :n",
            cond: None,
            names: &[("#exp", "expires_at"), ("#c", &name)],
            values: vec![(":ttl", n(day_end(day) + 3 * 86_400)), (":n", n(by))],
            return_old: false,
        })
        .await
        .map(drop)
    }

    async fn counters(&self, day: &str) -> Result<BTreeMap<String, u64>, ReadError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("digest#{day}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let item = out.item().cloned().unwrap_or_default();
        Ok(item
            .keys()
            .filter_map(|k| Some((k.strip_prefix("n:")?.to_owned(), get_n(&item, k)?)))
            .collect())
    }

    async fn claim_digest(&self, day: &str, now: u64) -> Result<bool, ReadError> {
        Ok(self
            .update(Update {
                pk: format!("digest#{day}"),
                expr: "SET #pub = :now, #exp = if_not_exists(#exp, :ttl)",
                cond: Some("attribute_not_exists(#pub)"),
                names: &[("#pub", "published_at"), ("#exp", "expires_at")],
                values: vec![(":now", n(now)), (":ttl", n(day_end(day) + 3 * 86_400))],
                return_old: false,
            })
            .await?
            .is_some())
    }

    async fn problems(&self) -> Result<Vec<StoredProblem>, ReadError> {
        // A scan: the table holds one item per problem (deduplicated), a few per day and per
        // minute, so it stays small; the filter keeps open and pending problems.
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression(
                    "begins_with(#pk, :p) AND (#open = :t OR attribute_exists(#pend))",
                )
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#open", "is_open")
                .expression_attribute_names("#pend", "pending")
                .expression_attribute_values(":p", s("problem#"))
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(read_error)?;
            out.extend(page.items().iter().filter_map(DynamoStore::problem));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn unpend(&self, id: &str) -> Result<(), ReadError> {
        self.update(Update {
            pk: format!("problem#{id}"),
            expr: "REMOVE #pend",
            cond: Some("attribute_exists(#pk)"),
            names: &[("#pk", "pk"), ("#pend", "pending")],
            values: Vec::new(),
            return_old: false,
        })
        .await
        .map(drop)
    }

    async fn rewindow(&self, id: &str, alerted_at: u64, now: u64) -> Result<bool, ReadError> {
        Ok(self
            .update(Update {
                pk: format!("problem#{id}"),
                expr: "SET #as = :now, #sup = :zero, #chk = :now",
                cond: Some("#as = :old"),
                names: &[
                    ("#as", "alerted_at"),
                    ("#sup", "suppressed"),
                    ("#chk", "checked_at"),
                ],
                values: vec![(":now", n(now)), (":zero", n(0)), (":old", n(alerted_at))],
                return_old: false,
            })
            .await?
            .is_some())
    }

    async fn checked(&self, id: &str, now: u64) -> Result<(), ReadError> {
        self.update(Update {
            pk: format!("problem#{id}"),
            expr: "SET #chk = :now",
            cond: Some("attribute_exists(#pk)"),
            names: &[("#pk", "pk"), ("#chk", "checked_at")],
            values: vec![(":now", n(now))],
            return_old: false,
        })
        .await
        .map(drop)
    }

    async fn close(&self, id: &str, now: u64) -> Result<bool, ReadError> {
        Ok(self
            .update(Update {
                pk: format!("problem#{id}"),
                expr: "SET #open = :f, #chk = :now REMOVE #pend",
                cond: Some("#open = :t"),
                names: &[
                    ("#open", "is_open"),
                    ("#chk", "checked_at"),
                    ("#pend", "pending"),
                ],
                values: vec![
                    (":f", AttributeValue::Bool(false)),
                    (":t", AttributeValue::Bool(true)),
                    (":now", n(now)),
                ],
                return_old: false,
            })
            .await?
            .is_some())
    }

    async fn reopen(&self, id: &str) -> Result<(), ReadError> {
        self.update(Update {
            pk: format!("problem#{id}"),
            expr: "SET #open = :t",
            cond: Some("attribute_exists(#pk)"),
            names: &[("#pk", "pk"), ("#open", "is_open")],
            values: vec![(":t", AttributeValue::Bool(true))],
            return_old: false,
        })
        .await
        .map(drop)
    }
}

/// The epoch second at which `day` (`YYYY-MM-DD`) ends; far in the future when unreadable.
fn day_end(day: &str) -> u64 {
    let parts: Vec<i64> = day.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts.as_slice() else {
        return u64::MAX / 2;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if *m <= 2 { y - 1 } else { *y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((days + 1) * 86_400).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn day_end_is_midnight_after() {
        assert_eq!(super::day_end("1970-01-01"), 86_400);
        assert_eq!(super::day_end("2025-12-03"), 1_764_806_400);
        assert_eq!(
            auditor::noise::day_of(super::day_end("2024-02-29") - 1),
            "2024-02-29"
        );
    }
}
