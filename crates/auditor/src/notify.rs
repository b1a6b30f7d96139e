//! The SNS message a diagnosis is published as: built here, purely, so the live crate only
//! sends it.
//!
//! * **Subject**: under 100 characters, ASCII, one line, with the verdict, the caller and the
//!   bucket (`DENIED: reader/s1 (444455556666) reading doc-example-bucket`).
//! * **Message**: `MessageStructure: json`, so each protocol gets its own body: `default` is the
//!   diagnose JSON (what SQS, Lambda and HTTP subscribers receive), `email` the text report.
//! * **Attributes** for subscription filter policies: `verdict`, `finding_codes`
//!   (`String.Array`), `principal_account`, `resource_account`, `confidence`.
//! * **Size**: SNS refuses a publish over 256 KiB (message, subject and attributes together).
//!   A diagnosis that would exceed it is trimmed in steps, each leaving a note in the message
//!   (`trimmed`), never rejected: patched policies go first, the report text is cut last.

use serde_json::{json, Map, Value};

use crate::diagnose::{render_text, Diagnosis, Verdict};

/// The largest publish SNS accepts, in bytes.
pub const SNS_MAX_BYTES: usize = 262_144;

/// What the message, subject and attributes may use together: the limit less a margin for
/// the request's own framing.
const BUDGET: usize = SNS_MAX_BYTES - 2_048;

/// SNS allows subjects of fewer than 100 characters.
const SUBJECT_MAX: usize = 99;

/// One publish, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The subject (email subject line, and `Subject` in the JSON other protocols receive).
    pub subject: String,
    /// The message document for `MessageStructure: json`: `{"default": ..., "email": ...}`.
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
    let subject = subject(d);
    let attributes = attributes(d);
    let machine = serde_json::to_value(d).unwrap_or_else(|_| json!({}));
    let text = render_text(d);
    fit(subject, attributes, machine, text)
}

/// The notification for an event that could not be diagnosed, so that it is reported rather
/// than lost: `verdict` is `error`, and the message says what failed.
pub fn error_notification(event_id: Option<&str>, error_type: &str, message: &str) -> Notification {
    let id = event_id.unwrap_or("(no event id)");
    let subject = clip_ascii(
        &format!("ERROR: could not diagnose event {id}"),
        SUBJECT_MAX,
    );
    let machine = json!({
        "verdict": "error",
        "event_id": event_id,
        "error_type": error_type,
        "error": message,
    });
    let text = format!(
        "ERROR: the auditor could not diagnose event {id}.\n\n{error_type}: {message}\n\nThe event is kept in the function's logs; re-run it with `s3-kms-auditor diagnose --live --event FILE` once the cause is fixed.\n"
    );
    let attributes = vec![
        Attribute {
            name: "verdict",
            value: AttributeValue::String("error".into()),
        },
        Attribute {
            name: "error_type",
            value: AttributeValue::String(error_type.to_owned()),
        },
    ];
    fit(subject, attributes, machine, text)
}

fn subject(d: &Diagnosis) -> String {
    let verdict = match d.verdict {
        Verdict::Denied => "DENIED",
        Verdict::Allowed => "ALLOWED",
        Verdict::Unknown => "UNKNOWN",
    };
    let who = short_principal(&d.principal);
    let who = match &d.principal_account {
        Some(a) if !who.contains(a.as_str()) => format!("{who} ({a})"),
        _ => who,
    };
    let what = match target(d) {
        Some(Target::Bucket(b)) => format!(" reading {b}"),
        Some(Target::Key(k)) => format!(" using key {k}"),
        None => String::new(),
    };
    let full = format!("{verdict}: {who}{what}");
    if full.len() <= SUBJECT_MAX {
        return clip_ascii(&full, SUBJECT_MAX);
    }
    // Too long: keep the verdict and the bucket whole where possible, shorten the caller.
    let room = SUBJECT_MAX.saturating_sub(verdict.len() + 2 + what.len());
    if room >= 12 {
        clip_ascii(
            &format!("{verdict}: {}{what}", clip_ascii(&who, room)),
            SUBJECT_MAX,
        )
    } else {
        clip_ascii(&full, SUBJECT_MAX)
    }
}

/// `arn:aws:sts::444455556666:assumed-role/reader/s1` → `reader/s1`: the resource part
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

enum Target {
    Bucket(String),
    Key(String),
}

fn target(d: &Diagnosis) -> Option<Target> {
    let first = d.hops.first()?;
    if let Some(rest) = first.resource.strip_prefix("arn:aws:s3:::") {
        let bucket = rest.split('/').next().unwrap_or(rest);
        return Some(Target::Bucket(bucket.to_owned()));
    }
    let key = first.resource.rsplit('/').next().unwrap_or(&first.resource);
    Some(Target::Key(key.to_owned()))
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

fn attributes(d: &Diagnosis) -> Vec<Attribute> {
    let verdict = match d.verdict {
        Verdict::Denied => "denied",
        Verdict::Allowed => "allowed",
        Verdict::Unknown => "unknown",
    };
    let mut codes: Vec<String> = Vec::new();
    for f in &d.findings {
        let code = f.code.as_str().to_owned();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let confidence = serde_json::to_value(d.confidence)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut out = vec![
        Attribute {
            name: "verdict",
            value: AttributeValue::String(verdict.into()),
        },
        Attribute {
            name: "finding_codes",
            value: AttributeValue::StringArray(codes),
        },
    ];
    // SNS rejects empty string values, so an unknown account is left out rather than blank.
    for (name, value) in [
        ("principal_account", &d.principal_account),
        ("resource_account", &d.resource_account),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            out.push(Attribute {
                name,
                value: AttributeValue::String(v.clone()),
            });
        }
    }
    out.push(Attribute {
        name: "confidence",
        value: AttributeValue::String(confidence),
    });
    out
}

const REPORT_CUT_NOTE: &str =
    "\n\n[report trimmed to fit the SNS size limit; the full diagnosis is in the function's logs and `s3-kms-auditor diagnose` reproduces it]\n";

/// Builds the message and trims it step by step until it fits.
fn fit(subject: String, attributes: Vec<Attribute>, machine: Value, text: String) -> Notification {
    let mut n = Notification {
        subject,
        message: String::new(),
        attributes,
        trimmed: Vec::new(),
    };
    let mut machine = machine;
    let mut text = text;
    n.message = envelope(&machine, &text, &n.trimmed);
    if n.size() <= BUDGET {
        return n;
    }
    // The steps, cheapest loss first. Each removes a kind of detail from the JSON document;
    // the email text is cut only at the end.
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
    for (what, step) in steps {
        step(&mut machine);
        n.trimmed.push(what.to_owned());
        n.message = envelope(&machine, &text, &n.trimmed);
        if n.size() <= BUDGET {
            return n;
        }
    }
    // Still too large: cut the report text to what is left, then, if the JSON alone is too
    // large, keep only the summary a filter or a pager needs.
    let over = n.size().saturating_sub(BUDGET);
    if over < text.len() {
        let keep = text.len().saturating_sub(over + REPORT_CUT_NOTE.len() + 64);
        text = format!("{}{REPORT_CUT_NOTE}", cut_at_char(&text, keep));
        n.trimmed.push("email report text".into());
        n.message = envelope(&machine, &text, &n.trimmed);
        if n.size() <= BUDGET {
            return n;
        }
    }
    let summary = summary(&machine);
    text = format!("{}{REPORT_CUT_NOTE}", cut_at_char(&text, 4_096));
    n.trimmed
        .push("findings' explanations and fixes (summary only)".into());
    n.message = envelope(&summary, &text, &n.trimmed);
    n
}

fn envelope(machine: &Value, text: &str, trimmed: &[String]) -> String {
    let mut machine = machine.clone();
    if !trimmed.is_empty() {
        if let Some(obj) = machine.as_object_mut() {
            obj.insert(
                "trimmed".into(),
                json!({
                    "note": "parts of this diagnosis were left out to fit the SNS size limit; run `s3-kms-auditor diagnose` on the collected snapshot for all of it",
                    "removed": trimmed,
                }),
            );
        }
    }
    json!({ "default": machine.to_string(), "email": text }).to_string()
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
mod tests {
    use super::*;
    use crate::diagnose::diagnose;
    use crate::event::{parse_events, EventOutcome};
    use crate::snapshot::Snapshot;

    fn kc_diagnosis() -> Diagnosis {
        let raw: Value = serde_json::from_str(include_str!("../../../examples/kc-scenario.json"))
            .expect("example snapshot");
        let snap = Snapshot::from_value(&raw).expect("valid snapshot");
        let event: Value = serde_json::from_str(include_str!(
            "../../../events/s3-getobject-denied-cross-account.eventbridge.json"
        ))
        .expect("sample event");
        let Some(EventOutcome::Denied(req)) = parse_events(&event).expect("parses").pop() else {
            panic!("the sample is a denial");
        };
        diagnose(&snap, &req)
    }

    fn attribute<'a>(n: &'a Notification, name: &str) -> Option<&'a AttributeValue> {
        n.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }

    #[test]
    fn subject_states_verdict_principal_and_bucket() {
        // GIVEN the example scenario's diagnosis
        let d = kc_diagnosis();
        // WHEN it becomes a notification
        let n = notification(&d);
        // THEN the subject is short, one line, and says who was denied what
        assert_eq!(
            n.subject,
            "DENIED: reader/s1 (444455556666) reading doc-example-bucket"
        );
        assert!(n.subject.len() < 100);
        assert!(n.trimmed.is_empty());
    }

    #[test]
    fn long_principals_are_shortened_not_the_bucket() {
        let mut d = kc_diagnosis();
        d.principal = format!(
            "arn:aws:sts::444455556666:assumed-role/{}/{}",
            "r".repeat(64),
            "s".repeat(64)
        );
        let n = notification(&d);
        assert!(n.subject.len() < 100, "{}", n.subject);
        assert!(n.subject.starts_with("DENIED: rrrr"));
        assert!(n.subject.ends_with("... reading doc-example-bucket"));
    }

    #[test]
    fn message_has_json_for_machines_and_text_for_email() {
        let d = kc_diagnosis();
        let n = notification(&d);
        let doc: Value = serde_json::from_str(&n.message).expect("message is JSON");
        let default: Value =
            serde_json::from_str(doc["default"].as_str().expect("default is a string"))
                .expect("default is the diagnose JSON");
        assert_eq!(default, serde_json::to_value(&d).expect("serializes"));
        assert_eq!(doc["email"].as_str(), Some(render_text(&d).as_str()));
    }

    #[test]
    fn attributes_for_filter_policies() {
        let d = kc_diagnosis();
        let n = notification(&d);
        assert_eq!(
            attribute(&n, "verdict"),
            Some(&AttributeValue::String("denied".into()))
        );
        let Some(AttributeValue::StringArray(codes)) = attribute(&n, "finding_codes") else {
            panic!("finding_codes is a String.Array");
        };
        let expected: Vec<String> =
            d.findings
                .iter()
                .map(|f| f.code.as_str().to_owned())
                .fold(Vec::new(), |mut acc, c| {
                    if !acc.contains(&c) {
                        acc.push(c);
                    }
                    acc
                });
        assert_eq!(codes, &expected);
        assert_eq!(
            attribute(&n, "finding_codes").map(AttributeValue::string_value),
            Some(Value::from(expected).to_string())
        );
        assert_eq!(
            attribute(&n, "principal_account"),
            Some(&AttributeValue::String("444455556666".into()))
        );
        assert_eq!(
            attribute(&n, "resource_account"),
            Some(&AttributeValue::String("111122223333".into()))
        );
        assert_eq!(
            attribute(&n, "confidence").map(AttributeValue::string_value),
            serde_json::to_value(d.confidence)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        );
    }

    #[test]
    fn unknown_accounts_are_left_out_not_blank() {
        let mut d = kc_diagnosis();
        d.resource_account = None;
        let n = notification(&d);
        assert_eq!(attribute(&n, "resource_account"), None);
    }

    #[test]
    fn oversized_diagnoses_are_trimmed_with_a_note() {
        // GIVEN a diagnosis whose patched policies alone exceed the SNS limit
        let mut d = kc_diagnosis();
        let huge = json!({"Statement": [{"Sid": "x".repeat(SNS_MAX_BYTES)}]});
        for f in d.findings.iter_mut() {
            if let Some(fix) = f.fix.as_mut() {
                fix.patched_policy = Some(huge.clone());
            }
        }
        // WHEN it becomes a notification
        let n = notification(&d);
        // THEN it fits, keeps the verdict and codes, and says what was removed
        assert!(n.size() <= SNS_MAX_BYTES, "{}", n.size());
        assert_eq!(n.trimmed.len(), 1, "{:?}", n.trimmed);
        let doc: Value = serde_json::from_str(&n.message).expect("JSON");
        let default: Value =
            serde_json::from_str(doc["default"].as_str().expect("string")).expect("JSON");
        assert_eq!(default["verdict"], "denied");
        assert!(default["trimmed"]["removed"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("fix.patched_policy")));
        assert!(default["findings"][0]["fix"]["cli"].is_string());
    }

    #[test]
    fn even_a_giant_report_is_cut_rather_than_rejected() {
        // GIVEN explanations so long that no detail removal is enough
        let mut d = kc_diagnosis();
        for f in d.findings.iter_mut() {
            f.explanation = "é".repeat(SNS_MAX_BYTES);
        }
        let n = notification(&d);
        assert!(n.size() <= SNS_MAX_BYTES, "{}", n.size());
        let doc: Value = serde_json::from_str(&n.message).expect("JSON");
        assert!(doc["email"]
            .as_str()
            .is_some_and(|t| t.contains("report trimmed")));
        let default: Value =
            serde_json::from_str(doc["default"].as_str().expect("string")).expect("JSON");
        assert_eq!(default["verdict"], "denied");
        assert!(default["finding_codes"].is_array());
    }

    #[test]
    fn error_reports_carry_the_failure() {
        let n = error_notification(Some("e-1"), "PublishFailed", "timeout");
        assert_eq!(n.subject, "ERROR: could not diagnose event e-1");
        assert_eq!(
            attribute(&n, "verdict"),
            Some(&AttributeValue::String("error".into()))
        );
        let doc: Value = serde_json::from_str(&n.message).expect("JSON");
        assert!(doc["default"]
            .as_str()
            .is_some_and(|s| s.contains("timeout")));
    }
}
