//! The SNS message a diagnosis is published as: built here, purely, so the live crate only
//! sends it.
//!
//! AWS sends message attributes only when the message structure is String, not JSON
//! (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html>). A publish with
//! `MessageStructure: json` and attributes would leave attribute filter policies nothing to
//! match on real AWS, so the publish uses the default String structure and one body for every
//! protocol:
//!
//! * **Subject** (what the e-mail subject line shows, and `Subject` in the JSON envelope of
//!   other protocols): under 100 printable ASCII characters, with what an on-call engineer
//!   triages by — the verdict, `(incomplete, low confidence)` when that is so, the first
//!   blocking code and how many more, the account that must act, and the bucket with the
//!   object key's prefix:
//!   `DENIED KEY_POLICY_NO_ALLOW +1 | fix: 111122223333 | doc-example-bucket/reports/`.
//! * **Body**: a JSON object, so that subscriptions can filter on it with
//!   `FilterPolicyScope: MessageBody`
//!   (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering-scope.html>). Its top
//!   level holds the fields filters need (`verdict`, `confidence`, `complete`,
//!   `finding_codes`, `blocking_codes`, `acting_accounts`, `principal_account`,
//!   `resource_account`, `bucket`, `key_prefix`), then `text`, the text report as an array
//!   of lines (a JSON string cannot hold a line break; one line per element keeps the report
//!   readable in an e-mail), then `diagnosis`, the document `diagnose --format json` prints.
//!   Each top-level field is on its own line.
//! * **Attributes**, for filter policies on the default `MessageAttributes` scope:
//!   `verdict`, `finding_codes` (`String.Array`), `principal_account`, `resource_account`,
//!   `confidence`, `complete`, `acting_accounts` (`String.Array`). Seven, under the ten that
//!   raw delivery to SQS allows.
//! * **Size**: SNS refuses a publish over 256 KiB (message, subject and attributes together).
//!   A diagnosis that would exceed it is trimmed in steps, each named in the body's
//!   `trimmed`, never rejected: patched policies go first, the report text is cut last.

use serde_json::{json, Map, Value};

use crate::arn::{kms_key_arn, s3_arn};
use crate::diagnose::{render_text, Code, Confidence, Diagnosis, Verdict};
pub use crate::impact::ImpactKind;

mod impact;
mod sweep;
pub use impact::{impact_messages, impact_notification, ImpactMessage};
pub use sweep::{completion_notification, sweep_notification, sweep_text};

/// The largest publish SNS accepts, in bytes.
pub const SNS_MAX_BYTES: usize = 262_144;

/// What the message, subject and attributes may use together: the limit less a margin for
/// the request's own framing.
const BUDGET: usize = SNS_MAX_BYTES - 2_048;

/// SNS allows subjects of fewer than 100 characters.
const SUBJECT_MAX: usize = 99;

/// One publish, ready to send with the default (String) message structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The subject (e-mail subject line, and `Subject` in the JSON other protocols receive).
    pub subject: String,
    /// The message body: one JSON object for every protocol (see the module documentation).
    pub message: String,
    /// Message attributes, in a stable order.
    pub attributes: Vec<Attribute>,
    /// What was left out to fit the size limit (empty when nothing was).
    pub trimmed: Vec<String>,
}

/// One message attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name.
    pub name: &'static str,
    /// Its value.
    pub value: AttributeValue,
}

/// A message attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `DataType: String`.
    String(String),
    /// `DataType: String.Array`; SNS takes the value as a JSON array in `StringValue`.
    StringArray(Vec<String>),
}

impl AttributeValue {
    /// The SNS `DataType`.
    pub fn data_type(&self) -> &'static str {
        match self {
            AttributeValue::String(_) => "String",
            AttributeValue::StringArray(_) => "String.Array",
        }
    }

    /// The SNS `StringValue`.
    pub fn string_value(&self) -> String {
        match self {
            AttributeValue::String(s) => s.clone(),
            AttributeValue::StringArray(items) => Value::from(items.clone()).to_string(),
        }
    }
}

impl Notification {
    /// The bytes SNS counts against its limit: message, subject, attribute names, types and
    /// values.
    pub fn size(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|a| a.name.len() + a.value.data_type().len() + a.value.string_value().len())
                .sum::<usize>()
    }
}

/// The notification for a diagnosis.
pub fn notification(d: &Diagnosis) -> Notification {
    let facts = Facts::of(d);
    let subject = subject(d, &facts);
    let attributes = attributes(&facts);
    let machine = serde_json::to_value(d).unwrap_or_else(|_| json!({}));
    let head = head(&subject, &facts);
    fit(
        subject,
        attributes,
        head,
        ("diagnosis", machine),
        render_text(d),
    )
}

/// The notification for an event that could not be diagnosed, so that it is reported rather
/// than lost: `verdict` is `error`, and the message says what failed.
pub fn error_notification(event_id: Option<&str>, error_type: &str, message: &str) -> Notification {
    let id = event_id.unwrap_or("(no event id)");
    let subject = clip_ascii(
        &format!("ERROR: could not diagnose event {id}"),
        SUBJECT_MAX,
    );
    let head: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("kind", Value::from("diagnosis")),
        ("verdict", Value::from("error")),
        ("event_id", Value::from(event_id)),
        ("error_type", Value::from(error_type)),
        ("error", Value::from(message)),
    ];
    let text = format!(
        "ERROR: the auditor could not diagnose event {id}.\n\n{error_type}: {message}\n\nThe event is kept in the function's logs; re-run it with `s3-kms-auditor diagnose --live --event FILE` once the cause is fixed.\n"
    );
    let attributes = vec![
        Attribute {
            name: "kind",
            value: AttributeValue::String("diagnosis".into()),
        },
        Attribute {
            name: "verdict",
            value: AttributeValue::String("error".into()),
        },
        Attribute {
            name: "error_type",
            value: AttributeValue::String(error_type.to_owned()),
        },
    ];
    fit(subject, attributes, head, ("diagnosis", Value::Null), text)
}

/// What the subject, the body's top level and the attributes say, computed once.
struct Facts {
    verdict: &'static str,
    confidence: &'static str,
    complete: bool,
    finding_codes: Vec<String>,
    blocking_codes: Vec<String>,
    acting_accounts: Vec<String>,
    principal_account: Option<String>,
    resource_account: Option<String>,
    target: Option<Target>,
}

/// A notification that is not a diagnosis (a summary of rate-limited problems, a resolution,
/// a daily digest), built with the same conventions: a subject clipped to SNS's limit, a JSON
/// body with `verdict` and `head`'s fields one per line, then `text` line by line, and the
/// `verdict` attribute (plus `String` attributes from `extra`) for filter policies.
pub fn plain_notification(
    subject: &str,
    verdict: &str,
    head: Vec<(&'static str, Value)>,
    extra: &[(&'static str, String)],
    text: String,
) -> Notification {
    let subject = clip_ascii(subject, SUBJECT_MAX);
    let mut h: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("verdict", Value::from(verdict)),
    ];
    h.extend(head);
    // Summaries, resolutions and digests come from the diagnosis pipeline: subscribers that
    // filter on `kind = diagnosis` receive them with the diagnoses; `verdict` tells them apart.
    let mut attributes = vec![
        Attribute {
            name: "kind",
            value: AttributeValue::String("diagnosis".into()),
        },
        Attribute {
            name: "verdict",
            value: AttributeValue::String(verdict.to_owned()),
        },
    ];
    attributes.extend(
        extra
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| Attribute {
                name: k,
                value: AttributeValue::String(v.clone()),
            }),
    );
    fit(subject, attributes, h, ("diagnosis", Value::Null), text)
}

/// `n` with a `problem` field as the body's first line: the identity of the problem it
/// reports and, when repeats were suppressed since the last alert, their count with first and
/// last seen (live crate, noise control). The field is small; the size budget's margin covers
/// it.
pub fn with_problem(mut n: Notification, problem: &Value) -> Notification {
    if let Some(rest) = n.message.strip_prefix("{\n") {
        n.message = format!("{{\n  \"problem\": {problem},\n{rest}");
    }
    n
}

/// The prefix people file objects under: the key up to its last `/`, or the whole key when it
/// has none.
pub fn key_prefix(key: &str) -> &str {
    match key.rfind('/') {
        Some(i) => key.get(..=i).unwrap_or(key),
        None => key,
    }
}

/// What was accessed, from the first hop's ARN.
enum Target {
    /// An S3 object (or bucket): the bucket and the key's prefix.
    Object {
        bucket: String,
        key_prefix: Option<String>,
    },
    /// A KMS key called directly: its id.
    Key(String),
}

impl Facts {
    fn of(d: &Diagnosis) -> Facts {
        let mut finding_codes = Vec::new();
        let mut blocking_codes = Vec::new();
        let mut acting_accounts = Vec::new();
        for f in &d.findings {
            push_new(&mut finding_codes, f.code.as_str().to_owned());
            if f.blocking {
                push_new(&mut blocking_codes, f.code.as_str().to_owned());
                if let Some(who) = acting_account(f) {
                    push_new(&mut acting_accounts, who);
                }
            }
        }
        // Evidence the verdict needed was missing: an unknown verdict, a hop that could not
        // be evaluated, or a finding that says so.
        let complete = d.verdict != Verdict::Unknown
            && !d.hops.iter().any(|h| h.decision == "NotEvaluated")
            && !d.findings.iter().any(|f| f.code == Code::MissingEvidence);
        Facts {
            verdict: match d.verdict {
                Verdict::Denied => "denied",
                Verdict::Allowed => "allowed",
                Verdict::Unknown => "unknown",
            },
            confidence: match d.confidence {
                Confidence::Low => "low",
                Confidence::Medium => "medium",
                Confidence::High => "high",
            },
            complete,
            finding_codes,
            blocking_codes,
            acting_accounts,
            principal_account: d.principal_account.clone().filter(|a| !a.is_empty()),
            resource_account: d.resource_account.clone().filter(|a| !a.is_empty()),
            target: target(d),
        }
    }
}

fn push_new(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The account that must act on a blocking finding, as its fix names it (an account id, or
/// the management account of an organization for SCPs and RCPs).
pub(crate) fn acting_account(f: &crate::diagnose::Finding) -> Option<String> {
    f.fix
        .as_ref()
        .map(|x| x.account.clone())
        .or_else(|| f.account.clone())
        .filter(|a| !a.is_empty())
}

fn target(d: &Diagnosis) -> Option<Target> {
    let resource = &d.hops.first()?.resource;
    if let Some((bucket, key)) = s3_arn(resource) {
        // The prefix people file objects under: the key up to its last `/`, or the whole key
        // when it has none.
        let key_prefix = key
            .filter(|k| !k.is_empty())
            .map(|k| key_prefix(k).to_owned());
        return Some(Target::Object {
            bucket: bucket.to_owned(),
            key_prefix,
        });
    }
    if let Some((_, _, key_id)) = kms_key_arn(resource) {
        return Some(Target::Key(key_id.to_owned()));
    }
    Some(Target::Key(
        resource.rsplit('/').next().unwrap_or(resource).to_owned(),
    ))
}

/// `DENIED (incomplete, low confidence) KEY_POLICY_NO_ALLOW +1 | fix: 111122223333 |
/// doc-example-bucket/reports/`: the verdict and its caveats, the first blocking code, the
/// account that must act on it, and where. Without a blocking finding the caller takes the
/// code's place. Over the limit, the location is shortened first, then the caller.
fn subject(d: &Diagnosis, facts: &Facts) -> String {
    let mut head = facts.verdict.to_ascii_uppercase();
    let mut caveats = Vec::new();
    if !facts.complete {
        caveats.push("incomplete");
    }
    if d.confidence == Confidence::Low {
        caveats.push("low confidence");
    }
    if !caveats.is_empty() {
        head.push_str(&format!(" ({})", caveats.join(", ")));
    }
    let mut who = String::new();
    if let Some(first) = d.blocking().next() {
        head.push(' ');
        head.push_str(first.code.as_str());
        let more = d.blocking().count().saturating_sub(1);
        if more > 0 {
            head.push_str(&format!(" +{more}"));
        }
        if let Some(account) = acting_account(first) {
            let account = account
                .strip_prefix("management account of the organization of ")
                .map_or(account.clone(), |a| format!("org management of {a}"));
            head.push_str(&format!(" | fix: {account}"));
        }
    } else {
        who = short_principal(&d.principal);
        if let Some(a) = &facts.principal_account {
            if !who.contains(a.as_str()) {
                who = format!("{who} ({a})");
            }
        }
    }
    let location = match &facts.target {
        Some(Target::Object { bucket, key_prefix }) => {
            format!("{bucket}/{}", key_prefix.as_deref().unwrap_or(""))
        }
        Some(Target::Key(k)) => format!("key {k}"),
        None => String::new(),
    };
    let joined = |head: &str, who: &str, location: &str| {
        [head, who, location]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let full = joined(&head, &who, &location);
    if full.len() <= SUBJECT_MAX {
        return clip_ascii(&full, SUBJECT_MAX);
    }
    // Shorten the caller first (the body names it in full), then the location.
    let sep = if who.is_empty() { 0 } else { 3 };
    let loc_sep = if location.is_empty() { 0 } else { 3 };
    let room_who = SUBJECT_MAX.saturating_sub(head.len() + sep + loc_sep + location.len());
    if !who.is_empty() && room_who >= 12 {
        return clip_ascii(
            &joined(&head, &clip_ascii(&who, room_who), &location),
            SUBJECT_MAX,
        );
    }
    let who = if who.is_empty() {
        who
    } else {
        clip_ascii(&who, 20)
    };
    let room_loc = SUBJECT_MAX.saturating_sub(head.len() + sep + who.len() + loc_sep);
    if room_loc >= 12 {
        return clip_ascii(
            &joined(&head, &who, &clip_ascii(&location, room_loc)),
            SUBJECT_MAX,
        );
    }
    clip_ascii(&full, SUBJECT_MAX)
}

/// `arn:<partition>:sts::444455556666:assumed-role/reader/s1` → `reader/s1`: the resource part
/// without its type, which is what people call the principal.
fn short_principal(arn: &str) -> String {
    let Some(parsed) = crate::arn::Arn::parse(arn) else {
        return arn.to_owned();
    };
    match parsed.resource.split_once('/') {
        Some(("assumed-role" | "role" | "user" | "federated-user", rest)) => rest.to_owned(),
        _ => parsed.resource.to_owned(),
    }
}

/// Printable ASCII only (SNS rejects control characters and line breaks in subjects), at
/// most `max` bytes, with `...` marking a cut.
fn clip_ascii(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= max {
        return clean;
    }
    let mut cut = clean[..max.saturating_sub(3)].to_owned();
    cut.push_str("...");
    cut
}

fn attributes(facts: &Facts) -> Vec<Attribute> {
    let string = |name, value: &str| Attribute {
        name,
        value: AttributeValue::String(value.to_owned()),
    };
    let mut out = vec![
        string("kind", "diagnosis"),
        string("verdict", facts.verdict),
        Attribute {
            name: "finding_codes",
            value: AttributeValue::StringArray(facts.finding_codes.clone()),
        },
    ];
    // SNS rejects empty string values, so an unknown account is left out rather than blank.
    for (name, value) in [
        ("principal_account", &facts.principal_account),
        ("resource_account", &facts.resource_account),
    ] {
        if let Some(v) = value {
            out.push(string(name, v));
        }
    }
    out.push(string("confidence", facts.confidence));
    out.push(string(
        "complete",
        if facts.complete { "true" } else { "false" },
    ));
    out.push(Attribute {
        name: "acting_accounts",
        value: AttributeValue::StringArray(facts.acting_accounts.clone()),
    });
    out
}

/// The body's top-level fields, in the order they are written, before `text` and
/// `diagnosis`.
type Head = Vec<(&'static str, Value)>;

/// The body's top level for a diagnosis: what the subject says, then the rest filters need.
fn head(subject: &str, facts: &Facts) -> Head {
    let mut h: Head = vec![
        ("subject", Value::from(subject)),
        ("kind", Value::from("diagnosis")),
        ("verdict", Value::from(facts.verdict)),
        ("confidence", Value::from(facts.confidence)),
        ("complete", Value::from(facts.complete)),
        ("blocking_codes", Value::from(facts.blocking_codes.clone())),
        ("finding_codes", Value::from(facts.finding_codes.clone())),
        (
            "acting_accounts",
            Value::from(facts.acting_accounts.clone()),
        ),
    ];
    for (name, value) in [
        ("principal_account", &facts.principal_account),
        ("resource_account", &facts.resource_account),
    ] {
        if let Some(v) = value {
            h.push((name, Value::from(v.as_str())));
        }
    }
    match &facts.target {
        Some(Target::Object { bucket, key_prefix }) => {
            h.push(("bucket", Value::from(bucket.as_str())));
            if let Some(p) = key_prefix {
                h.push(("key_prefix", Value::from(p.as_str())));
            }
        }
        Some(Target::Key(k)) => h.push(("kms_key", Value::from(k.as_str()))),
        None => {}
    }
    h
}

const REPORT_CUT_NOTE: &str =
    "[report trimmed to fit the SNS size limit; the full diagnosis is in the function's logs and `s3-kms-auditor diagnose` reproduces it]";

/// Builds the body and trims it step by step until it fits.
fn fit(
    subject: String,
    attributes: Vec<Attribute>,
    head: Head,
    (name, machine): (&'static str, Value),
    text: String,
) -> Notification {
    let mut n = Notification {
        subject,
        message: String::new(),
        attributes,
        trimmed: Vec::new(),
    };
    let mut machine = machine;
    let mut text = text;
    n.message = body(&head, &text, (name, &machine), &n.trimmed);
    if n.size() <= BUDGET {
        return n;
    }
    // The steps, cheapest loss first. Each removes a kind of detail from the diagnosis; the
    // report text is cut only at the end.
    type Step = (&'static str, fn(&mut Value));
    let steps: [Step; 4] = [
        (
            "fix.patched_policy (the full patched policies; each fix's statement and command remain)",
            |v| for_each_fix(v, |fix| drop(fix.remove("patched_policy"))),
        ),
        ("fix.statement", |v| {
            for_each_fix(v, |fix| drop(fix.remove("statement")))
        }),
        ("advisory findings", |v| {
            if let Some(list) = v.get_mut("findings").and_then(Value::as_array_mut) {
                list.retain(|f| f.get("blocking") == Some(&Value::Bool(true)));
            }
        }),
        ("assumptions and hops", |v| {
            if let Some(obj) = v.as_object_mut() {
                obj.remove("assumptions");
                obj.remove("hops");
            }
        }),
    ];
    if !machine.is_null() {
        for (what, step) in steps {
            step(&mut machine);
            n.trimmed.push(what.to_owned());
            n.message = body(&head, &text, (name, &machine), &n.trimmed);
            if n.size() <= BUDGET {
                return n;
            }
        }
    }
    // Still too large: cut the report text, then, if the diagnosis alone is too large, keep
    // only the summary a filter or a pager needs. Escaping and the one-line-per-element
    // layout make the text take more room in the body than in itself, so the cut is
    // measured, not computed.
    let full_text = text.clone();
    let mut keep = full_text
        .len()
        .saturating_sub(n.size().saturating_sub(BUDGET));
    n.trimmed.push("report text".into());
    for _ in 0..12 {
        if keep == 0 {
            break;
        }
        text = format!("{}\n{REPORT_CUT_NOTE}\n", cut_at_char(&full_text, keep));
        n.message = body(&head, &text, (name, &machine), &n.trimmed);
        if n.size() <= BUDGET {
            return n;
        }
        keep = keep * 3 / 4;
    }
    let summary = summary(&machine);
    text = format!("{}\n{REPORT_CUT_NOTE}\n", cut_at_char(&full_text, 4_096));
    n.trimmed
        .push("findings' explanations and fixes (summary only)".into());
    n.message = body(&head, &text, (name, &summary), &n.trimmed);
    n
}

/// The body: one top-level field per line, `text` one report line per array element,
/// `diagnosis` compact on one line.
fn body(head: &Head, text: &str, (name, machine): (&str, &Value), trimmed: &[String]) -> String {
    let mut fields: Vec<(&str, String)> = head.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let lines: Vec<String> = text
        .lines()
        .map(|l| format!("    {}", Value::from(l)))
        .collect();
    fields.push((
        "text",
        if lines.is_empty() {
            "[]".into()
        } else {
            format!("[\n{}\n  ]", lines.join(",\n"))
        },
    ));
    if !machine.is_null() {
        fields.push((name, machine.to_string()));
    }
    if !trimmed.is_empty() {
        fields.push((
            "trimmed",
            json!({
                "note": "parts of this diagnosis were left out to fit the SNS size limit; run `s3-kms-auditor diagnose` on the collected snapshot for all of it",
                "removed": trimmed,
            })
            .to_string(),
        ));
    }
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  {}: {v}", Value::from(*k)))
        .collect();
    format!("{{\n{}\n}}\n", inner.join(",\n"))
}

fn for_each_fix(v: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) {
    let Some(list) = v.get_mut("findings").and_then(Value::as_array_mut) else {
        return;
    };
    for finding in list {
        if let Some(fix) = finding.get_mut("fix").and_then(Value::as_object_mut) {
            f(fix);
        }
    }
}

fn summary(machine: &Value) -> Value {
    if machine.is_null() {
        return Value::Null;
    }
    let codes: Vec<Value> = machine
        .get("findings")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|f| f.get("code").cloned()).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for key in [
        "verdict",
        "principal",
        "principal_account",
        "resource_account",
        "confidence",
        "fixes_verified",
        "event",
    ] {
        if let Some(v) = machine.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("finding_codes".into(), Value::Array(codes));
    Value::Object(out)
}

fn cut_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
