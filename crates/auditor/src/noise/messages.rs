//! The rate limit, and the messages noise control publishes besides diagnoses: the
//! worst-first summary of rate-limited problems, the "resolved" message, and the daily digest.
//! All are built with `auditor::report::sns` conventions (subject under 100 characters, a
//! JSON body with one field per line, `verdict` as an attribute, under the SNS size limit).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::timestamp;
use crate::diagnose::{Diagnosis, Verdict};
use crate::report::sns::{acting_account, plain_notification, Notification, SNS_MAX_BYTES};

/// The minute `now` falls in: the rate limit's bucket.
pub fn minute_of(now: u64) -> u64 {
    now / 60
}

/// The rate limit within one container: at most `limit` messages per minute per topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateWindow {
    minute: u64,
    sent: u32,
}

impl RateWindow {
    /// Takes one message from this minute's allowance; `false` when it is spent (a `limit` of
    /// 0 means no limit).
    pub fn take(&mut self, now: u64, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        let minute = minute_of(now);
        if minute != self.minute {
            self.minute = minute;
            self.sent = 0;
        }
        if self.sent < limit {
            self.sent += 1;
            true
        } else {
            false
        }
    }
}

/// One problem in a summary: what a pager needs to triage it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryItem {
    /// The problem id.
    pub id: String,
    /// The identity, as one line.
    pub identity: String,
    /// `denied`, `allowed` or `unknown`.
    pub verdict: String,
    /// Blocking codes.
    pub blocking_codes: Vec<String>,
    /// Accounts that must act.
    pub acting_accounts: Vec<String>,
    /// Occurrences so far.
    pub occurrences: u64,
    /// First seen (seconds).
    pub first_seen: u64,
    /// Last seen (seconds).
    pub last_seen: u64,
}

impl SummaryItem {
    /// The item for a diagnosed problem.
    pub fn of(
        id: &str,
        identity: &str,
        d: &Diagnosis,
        occurrences: u64,
        first: u64,
        last: u64,
    ) -> SummaryItem {
        let mut blocking_codes = Vec::new();
        let mut acting_accounts = Vec::new();
        for f in d.blocking() {
            let c = f.code.as_str().to_owned();
            if !blocking_codes.contains(&c) {
                blocking_codes.push(c);
            }
            if let Some(a) = acting_account(f) {
                if !acting_accounts.contains(&a) {
                    acting_accounts.push(a);
                }
            }
        }
        SummaryItem {
            id: id.to_owned(),
            identity: identity.to_owned(),
            verdict: match d.verdict {
                Verdict::Denied => "denied",
                Verdict::Allowed => "allowed",
                Verdict::Unknown => "unknown",
            }
            .to_owned(),
            blocking_codes,
            acting_accounts,
            occurrences,
            first_seen: first,
            last_seen: last,
        }
    }

    /// Worst first: denials before unknowns before allowed, then more blocking causes, then
    /// more occurrences, then the id (stable).
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>, std::cmp::Reverse<u64>, String) {
        let v = match self.verdict.as_str() {
            "denied" => 0,
            "unknown" => 1,
            _ => 2,
        };
        (
            v,
            std::cmp::Reverse(self.blocking_codes.len()),
            std::cmp::Reverse(self.occurrences),
            self.id.clone(),
        )
    }

    fn line(&self) -> String {
        let codes = if self.blocking_codes.is_empty() {
            "nothing blocks".to_owned()
        } else {
            self.blocking_codes.join("+")
        };
        let fix = if self.acting_accounts.is_empty() {
            String::new()
        } else {
            format!(" | fix: {}", self.acting_accounts.join(","))
        };
        format!(
            "{} {codes}{fix} | x{} | {} | {}",
            self.verdict.to_ascii_uppercase(),
            self.occurrences,
            self.identity,
            self.id
        )
    }
}

/// The summary of problems held back by the rate limit, worst first, split into as few
/// messages as fit SNS's size limit (each one worst-first too).
pub fn summary_notifications(items: &[SummaryItem], now: u64) -> Vec<Notification> {
    let mut sorted: Vec<&SummaryItem> = items.iter().collect();
    sorted.sort_by_key(|i| i.rank());
    // Room for the items of one message: the limit less a generous margin for the subject,
    // head and escaping (each item appears twice: in `problems` and in `text`).
    let budget = (SNS_MAX_BYTES - 16_384) / 2;
    let mut chunks: Vec<Vec<&SummaryItem>> = vec![Vec::new()];
    let mut used = 0;
    for item in sorted {
        let size =
            serde_json::to_string(item).map(|s| s.len()).unwrap_or(0) + item.line().len() + 16;
        if used + size > budget && chunks.last().is_some_and(|c| !c.is_empty()) {
            chunks.push(Vec::new());
            used = 0;
        }
        used += size;
        if let Some(c) = chunks.last_mut() {
            c.push(item);
        }
    }
    let parts = chunks.len();
    chunks
        .into_iter()
        .filter(|c| !c.is_empty())
        .enumerate()
        .map(|(i, chunk)| {
            let denied = chunk.iter().filter(|c| c.verdict == "denied").count();
            let worst = chunk.first().map(|c| c.line()).unwrap_or_default();
            let part = if parts > 1 {
                format!(" ({}/{parts})", i + 1)
            } else {
                String::new()
            };
            let subject = format!(
                "SUMMARY{part}: {} problems ({denied} denied) held back by the rate limit | worst: {worst}",
                chunk.len()
            );
            let mut text = format!(
                "{} distinct problems arrived beyond the rate limit and are summarised here, worst first (at {}). Each is also kept open and re-checked; its next alert carries its repeats.\n\n",
                chunk.len(),
                timestamp(now)
            );
            for c in &chunk {
                text.push_str(&c.line());
                text.push('\n');
            }
            plain_notification(
                &subject,
                "summary",
                vec![
                    ("problem_count", json!(chunk.len())),
                    ("problems", json!(chunk)),
                ],
                &[],
                text,
            )
        })
        .collect()
}

/// What was alerted, kept with an open problem so the resolution can refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Alerted {
    /// The problem id.
    pub id: String,
    /// The identity, as one line.
    pub identity: String,
    /// Blocking codes with their accounts when it was alerted.
    pub blocking: Vec<String>,
    /// The SNS message id of the first alert.
    pub message_id: Option<String>,
    /// The subject of the first alert.
    pub subject: Option<String>,
}

/// The "resolved" message: the problem `a` no longer blocks; `now_blocking` is what the new
/// diagnosis found blocking (empty when nothing does), `verdict` its verdict.
pub fn resolved_notification(
    a: &Alerted,
    verdict: &str,
    first_seen: u64,
    last_seen: u64,
    occurrences: u64,
    now: u64,
) -> Notification {
    let changed: Vec<String> = a
        .blocking
        .iter()
        .map(|b| format!("{b} no longer blocks"))
        .collect();
    let subject = format!(
        "RESOLVED {} | {}",
        a.blocking.first().map(String::as_str).unwrap_or("problem"),
        a.identity
    );
    let mut text = format!(
        "RESOLVED at {}: {}\n\nThe re-check diagnosed the request that exposed this problem against the current state: the verdict is now {verdict}.\n",
        timestamp(now),
        a.identity
    );
    if let Some(s) = &a.subject {
        text.push_str(&format!("Original alert: {s}\n"));
    }
    for c in &changed {
        text.push_str(&format!("- {c}\n"));
    }
    text.push_str(&format!(
        "Seen {occurrences} times from {} to {}.\n",
        timestamp(first_seen),
        timestamp(last_seen)
    ));
    plain_notification(
        &subject,
        "resolved",
        vec![
            (
                "problem",
                json!({"id": a.id, "identity": a.identity, "original_message_id": a.message_id, "original_subject": a.subject}),
            ),
            ("new_verdict", json!(verdict)),
            ("changed", json!(changed)),
            ("occurrences", json!(occurrences)),
            ("first_seen", json!(timestamp(first_seen))),
            ("last_seen", json!(timestamp(last_seen))),
        ],
        &[],
        text,
    )
}

/// The daily digest: what was suppressed (by default rules, configured rules, as repeats) and
/// which rules have expired. Counter names are `default:<name>`, `rule:<id>`, `repeat`,
/// `expired:<id>`, `rate_limited`.
pub fn digest_notification(day: &str, counters: &BTreeMap<String, u64>) -> Notification {
    let by_rule: u64 = counters
        .iter()
        .filter(|(k, _)| k.starts_with("default:") || k.starts_with("rule:"))
        .map(|(_, v)| v)
        .sum();
    let repeats = counters.get("repeat").copied().unwrap_or(0);
    let expired: Vec<&str> = counters
        .keys()
        .filter_map(|k| k.strip_prefix("expired:"))
        .collect();
    let subject = format!(
        "DIGEST {day}: {by_rule} denials suppressed by rule, {repeats} repeats{}",
        if expired.is_empty() {
            String::new()
        } else {
            format!(", {} expired rules", expired.len())
        }
    );
    let mut text = format!("Noise control digest for {day} (UTC).\n\n");
    for (k, v) in counters {
        let line = if let Some(n) = k.strip_prefix("default:") {
            format!("{v} denials of {n} suppressed by default (expected AWS service access)")
        } else if let Some(id) = k.strip_prefix("rule:") {
            format!("{v} denials suppressed by rule `{id}`")
        } else if let Some(id) = k.strip_prefix("expired:") {
            format!("rule `{id}` has expired and no longer applies: {v} denials it would have suppressed were handled normally; renew or remove it")
        } else if k == "repeat" {
            format!("{v} repeats suppressed within the dedup window")
        } else {
            format!("{k}: {v}")
        };
        text.push_str(&line);
        text.push('\n');
    }
    let counts: Value = json!(counters);
    plain_notification(
        &subject,
        "digest",
        vec![
            ("day", json!(day)),
            ("counters", counts),
            ("expired_rules", json!(expired)),
        ],
        &[],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, verdict: &str, codes: usize, n: u64) -> SummaryItem {
        SummaryItem {
            id: id.into(),
            identity: format!("arn:aws:iam::444455556666:role/{id} | b/ | GetObject"),
            verdict: verdict.into(),
            blocking_codes: (0..codes).map(|i| format!("CODE_{i}")).collect(),
            acting_accounts: vec!["111122223333".into()],
            occurrences: n,
            first_seen: 0,
            last_seen: 60,
        }
    }

    #[test]
    fn the_rate_limit_resets_each_minute() {
        let mut r = RateWindow::default();
        assert!(r.take(120, 2));
        assert!(r.take(121, 2));
        assert!(!r.take(179, 2));
        assert!(r.take(180, 2), "a new minute");
        assert!(r.take(180, 0) && r.take(180, 0), "0 is no limit");
    }

    #[test]
    fn a_summary_is_worst_first_and_fits_sns() {
        let items = vec![
            item("allowed", "allowed", 0, 50),
            item("one-cause", "denied", 1, 3),
            item("two-causes", "denied", 2, 1),
            item("unknown", "unknown", 0, 9),
        ];
        let n = summary_notifications(&items, 0);
        assert_eq!(n.len(), 1);
        let body: Value = serde_json::from_str(&n[0].message).unwrap();
        let order: Vec<&str> = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["two-causes", "one-cause", "unknown", "allowed"]);
        assert!(
            n[0].subject.starts_with("SUMMARY: 4 problems (2 denied)"),
            "{}",
            n[0].subject
        );
        assert!(n[0].subject.len() < 100);
        assert_eq!(body["verdict"], "summary");
        // 500 principals: a handful of messages, each within the limit and worst-first.
        let many: Vec<SummaryItem> = (0..500)
            .map(|i| {
                let mut it = item(&format!("p-{i:032}"), "denied", 1 + i % 3, i as u64);
                it.identity.push_str(&"y".repeat(120));
                it
            })
            .collect();
        let n = summary_notifications(&many, 0);
        assert!((2..=6).contains(&n.len()), "{} messages", n.len());
        let mut total = 0;
        for m in &n {
            assert!(m.size() <= SNS_MAX_BYTES, "{}", m.size());
            assert!(m.trimmed.is_empty(), "{:?}", m.trimmed);
            let body: Value = serde_json::from_str(&m.message).unwrap();
            let codes: Vec<usize> = body["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["blocking_codes"].as_array().unwrap().len())
                .collect();
            assert!(codes.windows(2).all(|w| w[0] >= w[1]), "worst first");
            total += codes.len();
        }
        assert_eq!(total, 500);
    }

    #[test]
    fn resolved_and_digest_say_what_changed() {
        let a = Alerted {
            id: "p-1".into(),
            identity: "role/reader | b/r/ | GetObject".into(),
            blocking: vec!["KEY_POLICY_NO_ALLOW@111122223333".into()],
            message_id: Some("m-1".into()),
            subject: Some("DENIED KEY_POLICY_NO_ALLOW | fix: 111122223333 | b/r/".into()),
        };
        let n = resolved_notification(&a, "allowed", 0, 120, 7, 180);
        assert!(
            n.subject
                .starts_with("RESOLVED KEY_POLICY_NO_ALLOW@111122223333"),
            "{}",
            n.subject
        );
        let body: Value = serde_json::from_str(&n.message).unwrap();
        assert_eq!(body["verdict"], "resolved");
        assert_eq!(body["problem"]["original_message_id"], "m-1");
        assert_eq!(
            body["changed"][0],
            "KEY_POLICY_NO_ALLOW@111122223333 no longer blocks"
        );
        assert_eq!(body["occurrences"], 7);

        let counters: BTreeMap<String, u64> = [
            ("default:aws-config".to_owned(), 40),
            ("rule:batch-retry".to_owned(), 2),
            ("repeat".to_owned(), 5020),
            ("expired:old".to_owned(), 3),
        ]
        .into_iter()
        .collect();
        let d = digest_notification("2026-12-03", &counters);
        assert_eq!(
            d.subject,
            "DIGEST 2026-12-03: 42 denials suppressed by rule, 5020 repeats, 1 expired rules"
        );
        let body: Value = serde_json::from_str(&d.message).unwrap();
        assert_eq!(body["expired_rules"][0], "old");
        assert!(body["text"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("rule `old` has expired")));
    }
}
