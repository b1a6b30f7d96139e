//! Impact messages (issue 10): what a policy change broke, fixed or opened, on the diagnoses'
//! topic with `kind: impact`. A change that moves many paths the same way is one message
//! (`crate::impact::group`), so a key-policy edit that breaks 500 reads sends one alert
//! naming ten of them and counting the rest, with the one fix that restores them all.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{
    clip_ascii, fit, key_prefix, short_principal, Attribute, AttributeValue, Head, Notification,
    SUBJECT_MAX,
};
use crate::diagnose::Verdict;
use crate::impact::group::{group_paths, PathGroup, MAX_GROUPS, NAMED_PATHS};
use crate::impact::{ChangeRef, Impact, ImpactKind, ImpactPath};
use crate::snapshot::Snapshot;

/// One message of a change, with the paths it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpactMessage {
    /// Which way its paths moved; `None` for the summary of the groups beyond the cap.
    pub impact: Option<ImpactKind>,
    /// The paths it reports: (principal, bucket, object).
    pub paths: Vec<(String, String, String)>,
    /// The message.
    pub notification: Notification,
}

/// The messages of one change: one per group of paths that moved the same way for the same
/// cause (`crate::impact::group`), broken first — a group of one path is
/// [`impact_notification`]'s message — at most [`MAX_GROUPS`] of them, then one summary
/// counting the groups beyond by code and acting account. `after` is the snapshot after the
/// change: each group's fix is verified on it, and it names the buckets' owners.
pub fn impact_messages(
    impact: &Impact,
    after: &Snapshot,
    change: &ChangeRef,
) -> Vec<ImpactMessage> {
    let grouped = group_paths(impact, after, MAX_GROUPS);
    let owner = |bucket: &str| after.bucket(bucket).map(|(o, _)| o.to_owned());
    let mut out: Vec<ImpactMessage> = grouped
        .groups
        .iter()
        .map(|g| {
            let notification = match g.single() {
                Some(p) => {
                    let principal_account =
                        crate::refs::Arn::parse(&p.principal).map(|a| a.account.to_owned());
                    impact_notification(
                        g.kind,
                        p,
                        change,
                        principal_account.as_deref(),
                        owner(&p.bucket).as_deref(),
                    )
                }
                None => group_notification(g, change, &owner),
            };
            ImpactMessage {
                impact: Some(g.kind),
                paths: ids(&g.paths),
                notification,
            }
        })
        .collect();
    if !grouped.beyond.is_empty() {
        out.push(ImpactMessage {
            impact: None,
            paths: grouped.beyond.iter().flat_map(|g| ids(&g.paths)).collect(),
            notification: summary_notification(&grouped.beyond, out.len(), change),
        });
    }
    out
}

fn ids(paths: &[ImpactPath]) -> Vec<(String, String, String)> {
    paths
        .iter()
        .map(|p| (p.principal.clone(), p.bucket.clone(), p.object.clone()))
        .collect()
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Denied => "denied",
        Verdict::Allowed => "allowed",
        Verdict::Unknown => "unknown",
    }
}

/// `BROKEN KEY_POLICY_NO_ALLOW +1 | fix: 111122223333`: the way the verdict moved, the first
/// blocking code and how many more, the first account that must act.
fn subject_head(kind: ImpactKind, codes: &[String], must_act: &[String]) -> String {
    let mut head = kind.as_str().to_ascii_uppercase();
    if let Some(first) = codes.first() {
        head.push(' ');
        head.push_str(first);
        if codes.len() > 1 {
            let _ = write!(head, " +{}", codes.len() - 1);
        }
    }
    if let Some(who) = must_act.first() {
        let who = who
            .strip_prefix("management account of the organization of ")
            .map_or(who.clone(), |a| format!("org mgmt of {a}"));
        let _ = write!(head, " | fix: {who}");
        if must_act.len() > 1 {
            let _ = write!(head, " +{}", must_act.len() - 1);
        }
    }
    head
}

/// Where a subject says the paths are.
struct Place<'a> {
    bucket: &'a str,
    /// The object of a single path.
    object: Option<&'a str>,
    /// `3 paths`, `+2 buckets, 500 paths`.
    note: Option<&'a str>,
}

impl Place<'_> {
    fn text(&self, object: Option<&str>) -> String {
        let mut out = self.bucket.to_owned();
        if let Some(o) = object {
            out.push('/');
            out.push_str(o);
        }
        if let Some(n) = self.note {
            let _ = write!(out, " ({n})");
        }
        out
    }
}

/// `HEAD | bucket/object | EventName | tail`, under SNS's 100 characters: the verdict, code
/// and acting account, then where, then the change. Over the limit the tail goes first, then
/// the object key is shortened to its prefix, then dropped; the bucket and the change's name
/// stay whole unless the bucket name is too long, when it is cut where it stands.
fn impact_subject(head: &str, place: &Place<'_>, event_name: &str, tail: Option<&str>) -> String {
    let prefix = place.object.map(key_prefix).filter(|p| p.ends_with('/'));
    let mut candidates: Vec<String> = Vec::new();
    let objects = [place.object, prefix, None];
    for (with_tail, object) in [(true, objects[0]), (true, objects[1])]
        .into_iter()
        .chain(objects.iter().map(|o| (false, *o)))
    {
        let mut parts = vec![head.to_owned(), place.text(object), event_name.to_owned()];
        if let Some(t) = tail.filter(|_| with_tail) {
            parts.push(t.to_owned());
        }
        candidates.push(parts.join(" | "));
    }
    if let Some(fits) = candidates
        .iter()
        .find(|c| c.len() <= SUBJECT_MAX && c.is_ascii())
    {
        return fits.clone();
    }
    // A long bucket name: cut it where it stands, so the change's name still follows.
    let note = place.note.map(|n| format!(" ({n})")).unwrap_or_default();
    let fixed = head.len() + 3 + note.len() + 3 + event_name.len();
    let room = SUBJECT_MAX.saturating_sub(fixed);
    if room >= 12 {
        return clip_ascii(
            &format!(
                "{head} | {}{note} | {event_name}",
                clip_ascii(place.bucket, room)
            ),
            SUBJECT_MAX,
        );
    }
    clip_ascii(
        &format!("{head} | {event_name} | {}", place.text(None)),
        SUBJECT_MAX,
    )
}

/// `Change: <what>, by <actor>, at <time>, event <id>`.
fn change_line(c: &ChangeRef) -> String {
    format!(
        "Change: {}{}{}{}",
        c.changed,
        c.actor
            .as_deref()
            .map(|a| format!(", by {a}"))
            .unwrap_or_default(),
        c.event_time
            .as_deref()
            .map(|t| format!(", at {t}"))
            .unwrap_or_default(),
        c.event_id
            .as_deref()
            .map(|i| format!(", event {i}"))
            .unwrap_or_default(),
    )
}

/// The value every path of `paths` has for `f`, when they agree.
fn common(paths: &[ImpactPath], f: impl Fn(&ImpactPath) -> Option<String>) -> Option<String> {
    let first = f(paths.first()?)?;
    paths
        .iter()
        .all(|p| f(p).as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// The message of a group of several paths: the subject counts them, the body lists the
/// first [`NAMED_PATHS`] worst first and counts the rest, and carries the group's fix with
/// the number of paths it was verified to restore.
fn group_notification(
    g: &PathGroup,
    change: &ChangeRef,
    owner: &dyn Fn(&str) -> Option<String>,
) -> Notification {
    let n = g.paths.len();
    let change_event = format!("{}:{}", service_of(&change.event_source), change.event_name);
    let mut buckets: Vec<&str> = Vec::new();
    for p in &g.paths {
        if !buckets.contains(&p.bucket.as_str()) {
            buckets.push(&p.bucket);
        }
    }
    let note = if buckets.len() > 1 {
        format!("+{} buckets, {n} paths", buckets.len() - 1)
    } else {
        format!("{n} paths")
    };
    let blocking: Vec<String> = if g.kind == ImpactKind::Broken {
        g.codes.clone()
    } else {
        Vec::new()
    };
    let subject = impact_subject(
        &subject_head(g.kind, &blocking, &g.must_act),
        &Place {
            bucket: buckets.first().copied().unwrap_or_default(),
            object: None,
            note: Some(&note),
        },
        &change.event_name,
        None,
    );
    let principal_account = common(&g.paths, |p| {
        crate::refs::Arn::parse(&p.principal).map(|a| a.account.to_owned())
    });
    let resource_account = common(&g.paths, |p| owner(&p.bucket));
    let (va, vb) = g.paths.first().map_or(("unknown", "unknown"), |p| {
        (verdict(p.verdict_after), verdict(p.verdict_before))
    });
    let mut principals: Vec<&str> = Vec::new();
    for p in &g.paths {
        if !principals.contains(&p.principal.as_str()) {
            principals.push(&p.principal);
        }
    }
    let mut head: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("kind", Value::from("impact")),
        ("impact", Value::from(g.kind.as_str())),
        ("verdict", Value::from(va)),
        ("verdict_before", Value::from(vb)),
        ("blocking_codes", Value::from(blocking.clone())),
        ("finding_codes", Value::from(blocking.clone())),
        ("acting_accounts", Value::from(g.must_act.clone())),
        ("path_count", Value::from(n)),
        (
            "principals",
            Value::from(
                principals
                    .iter()
                    .take(NAMED_PATHS)
                    .copied()
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    for (name, value) in [
        ("principal_account", &principal_account),
        ("resource_account", &resource_account),
    ] {
        if let Some(v) = value {
            head.push((name, Value::from(v.as_str())));
        }
    }
    if let [only] = buckets.as_slice() {
        head.push(("bucket", Value::from(*only)));
    } else {
        head.push(("buckets", Value::from(buckets.clone())));
    }
    head.push(("change_event", Value::from(change_event.as_str())));
    head.push((
        "change",
        serde_json::to_value(change).unwrap_or(Value::Null),
    ));
    let named: Vec<Value> = g
        .paths
        .iter()
        .take(NAMED_PATHS)
        .map(|p| {
            json!({
                "principal": p.principal,
                "bucket": p.bucket,
                "object": p.object,
                "action": p.action,
                "verdict_before": verdict(p.verdict_before),
                "verdict_after": verdict(p.verdict_after),
                "blocking": p.blocking,
                "must_act": p.must_act,
                "fixes_verified": p.fixes_verified,
            })
        })
        .collect();
    let machine = json!({
        "impact": g.kind.as_str(),
        "codes": g.codes,
        "path_count": n,
        "paths": named,
        "paths_not_named": n.saturating_sub(NAMED_PATHS),
        "findings": g.findings,
        "fix_combined": g.fix_combined,
        "fix_restores": g.fix_restores,
    });
    let text = group_text(g, change, principals.len());
    let string = |name, value: &str| Attribute {
        name,
        value: AttributeValue::String(value.to_owned()),
    };
    let mut attributes = vec![
        string("kind", "impact"),
        string("impact", g.kind.as_str()),
        string("verdict", va),
        Attribute {
            name: "finding_codes",
            value: AttributeValue::StringArray(blocking),
        },
    ];
    for (name, value) in [
        ("principal_account", &principal_account),
        ("resource_account", &resource_account),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            attributes.push(string(name, v));
        }
    }
    attributes.push(string("change_event", &change_event));
    attributes.push(Attribute {
        name: "acting_accounts",
        value: AttributeValue::StringArray(g.must_act.clone()),
    });
    attributes.push(string("path_count", &n.to_string()));
    fit(subject, attributes, head, ("group", machine), text)
}

/// The text of a group: what the change did to how many paths, the first ones named, who
/// must act, the causes and the one fix, and on how many paths it was verified.
fn group_text(g: &PathGroup, c: &ChangeRef, principals: usize) -> String {
    let mut out = String::new();
    let n = g.paths.len();
    let what = match g.kind {
        ImpactKind::Broken => "broke",
        ImpactKind::Fixed => "fixed",
        ImpactKind::Opened => "opened",
        ImpactKind::Undecided => "made undecidable",
    };
    let _ = writeln!(
        out,
        "{} {} {what} {n} read paths ({principals} principals), all for the same cause:",
        c.event_source, c.event_name
    );
    for p in g.paths.iter().take(NAMED_PATHS) {
        let _ = writeln!(
            out,
            "  {} -> s3://{}/{} ({})",
            p.principal, p.bucket, p.object, p.action
        );
    }
    if n > NAMED_PATHS {
        let _ = writeln!(
            out,
            "  and {} more (the function's log lists every path; `s3-kms-auditor impact` on the stored snapshot reproduces them)",
            n - NAMED_PATHS
        );
    }
    let _ = writeln!(out, "{}", change_line(c));
    if g.kind != ImpactKind::Broken && !g.codes.is_empty() {
        let _ = writeln!(out, "Blocked before by: {}", g.codes.join(", "));
    }
    if !g.must_act.is_empty() {
        let _ = writeln!(out, "Must act: {}", g.must_act.join(", "));
    }
    let worst = g.paths.first().map(|p| p.principal.as_str()).unwrap_or("");
    for f in &g.findings {
        let _ = writeln!(
            out,
            "\n{} — {} must act",
            f.code,
            crate::diagnose::who_acts(f)
        );
        let _ = writeln!(
            out,
            "  {} (said of {worst}; the other paths read alike)",
            f.explanation
        );
        if let Some(fix) = &f.fix {
            let one = if g.fix_combined {
                format!(" (one change for all {n} paths)")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  Fix{one}: $ {}", fix.cli);
        }
    }
    match g.fix_restores {
        Some(k) if k == n => {
            let _ = writeln!(
                out,
                "\nThe fix restores all {n} paths (verified by re-evaluation of each)."
            );
        }
        Some(k) => {
            let _ = writeln!(
                out,
                "\nThe fix restores {k} of the {n} paths (verified by re-evaluation of each); the others need fixes of their own (`s3-kms-auditor impact` lists each path's)."
            );
        }
        None if g.kind == ImpactKind::Broken => {
            let _ = writeln!(
                out,
                "\nThe fix is not verified: it is not a change the snapshot can express."
            );
        }
        None => {}
    }
    out
}

/// The summary of the groups beyond the cap: how many paths, by way, code and acting
/// account, so nothing is silently dropped.
fn summary_notification(beyond: &[PathGroup], sent: usize, change: &ChangeRef) -> Notification {
    let change_event = format!("{}:{}", service_of(&change.event_source), change.event_name);
    let paths: usize = beyond.iter().map(|g| g.paths.len()).sum();
    let subject = clip_ascii(
        &format!(
            "IMPACT SUMMARY: {paths} more paths in {} groups | {}",
            beyond.len(),
            change.event_name
        ),
        SUBJECT_MAX,
    );
    let mut codes: Vec<String> = Vec::new();
    let mut acting: Vec<String> = Vec::new();
    let mut text = format!(
        "{} {} moved more read paths than fit {sent} messages; the other {paths}, grouped:\n",
        change.event_source, change.event_name
    );
    let mut rows = Vec::new();
    for g in beyond {
        for c in &g.codes {
            if !codes.contains(c) {
                codes.push(c.clone());
            }
        }
        for a in &g.must_act {
            if !acting.contains(a) {
                acting.push(a.clone());
            }
        }
        let first = g
            .paths
            .first()
            .map(|p| format!("{} -> s3://{}/{}", p.principal, p.bucket, p.object))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  {} {} | must act: {} | {} paths, first {first}",
            g.kind.as_str().to_ascii_uppercase(),
            if g.codes.is_empty() {
                "-".to_owned()
            } else {
                g.codes.join("+")
            },
            if g.must_act.is_empty() {
                "-".to_owned()
            } else {
                g.must_act.join(",")
            },
            g.paths.len()
        );
        rows.push(json!({
            "impact": g.kind.as_str(),
            "codes": g.codes,
            "acting_accounts": g.must_act,
            "path_count": g.paths.len(),
            "first": g.paths.first().map(|p| json!({"principal": p.principal, "bucket": p.bucket, "object": p.object})),
        }));
    }
    let _ = writeln!(text, "{}", change_line(change));
    let head: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("kind", Value::from("impact")),
        ("impact", Value::from("summary")),
        ("path_count", Value::from(paths)),
        ("group_count", Value::from(beyond.len())),
        ("finding_codes", Value::from(codes.clone())),
        ("acting_accounts", Value::from(acting.clone())),
        ("change_event", Value::from(change_event.as_str())),
        (
            "change",
            serde_json::to_value(change).unwrap_or(Value::Null),
        ),
    ];
    let string = |name, value: &str| Attribute {
        name,
        value: AttributeValue::String(value.to_owned()),
    };
    let attributes = vec![
        string("kind", "impact"),
        string("impact", "summary"),
        Attribute {
            name: "finding_codes",
            value: AttributeValue::StringArray(codes),
        },
        string("change_event", &change_event),
        Attribute {
            name: "acting_accounts",
            value: AttributeValue::StringArray(acting),
        },
        string("path_count", &paths.to_string()),
    ];
    fit(
        subject,
        attributes,
        head,
        ("groups", Value::from(rows)),
        text,
    )
}

/// The notification for one read path a change broke, fixed or opened: the same topic and
/// conventions as a diagnosis (subject, JSON body with `text`, attributes), with
/// `kind: impact`, `impact: broken | fixed | opened`, the change (`change_event`, and
/// `change` with actor, time and event id) and the path (PATH of docs/impact-format.md, with
/// its findings, fixes and `fixes_verified`) in `path`. Subject:
/// `BROKEN KEY_POLICY_NO_ALLOW | fix: 111122223333 | doc-example-bucket/reports/q1.csv |
/// PutKeyPolicy | reader`. A change that moves several paths the same way is one message
/// ([`impact_messages`]); this is the message of a group of one.
pub fn impact_notification(
    kind: ImpactKind,
    path: &ImpactPath,
    change: &ChangeRef,
    principal_account: Option<&str>,
    resource_account: Option<&str>,
) -> Notification {
    let change_event = format!("{}:{}", service_of(&change.event_source), change.event_name);
    let head_part = subject_head(kind, &path.blocking, &path.must_act);
    // Bucket before the change's name; over the limit the principal goes first (the body
    // names it in full), then the object key is shortened to its prefix.
    let subject = impact_subject(
        &head_part,
        &Place {
            bucket: &path.bucket,
            object: Some(&path.object),
            note: None,
        },
        &change.event_name,
        Some(&short_principal(&path.principal)),
    );
    let mut head: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("kind", Value::from("impact")),
        ("impact", Value::from(kind.as_str())),
        ("verdict", Value::from(verdict(path.verdict_after))),
        ("verdict_before", Value::from(verdict(path.verdict_before))),
        ("blocking_codes", Value::from(path.blocking.clone())),
        ("finding_codes", Value::from(path.blocking.clone())),
        ("acting_accounts", Value::from(path.must_act.clone())),
        ("principal", Value::from(path.principal.as_str())),
    ];
    for (name, value) in [
        ("principal_account", principal_account),
        ("resource_account", resource_account),
    ] {
        if let Some(v) = value {
            head.push((name, Value::from(v)));
        }
    }
    head.push(("bucket", Value::from(path.bucket.as_str())));
    head.push(("object", Value::from(path.object.as_str())));
    head.push(("change_event", Value::from(change_event.as_str())));
    head.push((
        "change",
        serde_json::to_value(change).unwrap_or(Value::Null),
    ));
    let text = impact_text(kind, path, change);
    let string = |name, value: &str| Attribute {
        name,
        value: AttributeValue::String(value.to_owned()),
    };
    let mut attributes = vec![
        string("kind", "impact"),
        string("impact", kind.as_str()),
        string("verdict", verdict(path.verdict_after)),
        Attribute {
            name: "finding_codes",
            value: AttributeValue::StringArray(path.blocking.clone()),
        },
    ];
    for (name, value) in [
        ("principal_account", principal_account),
        ("resource_account", resource_account),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            attributes.push(string(name, v));
        }
    }
    attributes.push(string("change_event", &change_event));
    attributes.push(Attribute {
        name: "acting_accounts",
        value: AttributeValue::StringArray(path.must_act.clone()),
    });
    let machine = serde_json::to_value(path).unwrap_or(Value::Null);
    fit(subject, attributes, head, ("path", machine), text)
}

/// The change's service (`kms`), or its `eventSource` as given when it names none.
fn service_of(event_source: &str) -> &str {
    crate::refs::service_of(event_source).unwrap_or(event_source)
}

/// The impact of one path as text, for e-mail.
fn impact_text(kind: ImpactKind, p: &ImpactPath, c: &ChangeRef) -> String {
    let mut out = String::new();
    let what = match kind {
        ImpactKind::Broken => "broke",
        ImpactKind::Fixed => "fixed",
        ImpactKind::Opened => "opened",
        ImpactKind::Undecided => "made undecidable",
    };
    let _ = writeln!(
        out,
        "{} {} {what} reads of s3://{}/{} by {}.",
        c.event_source, c.event_name, p.bucket, p.object, p.principal
    );
    let _ = writeln!(out, "{}", change_line(c));
    let _ = writeln!(out, "Path: {} on {}", p.action, p.principal);
    if !p.must_act.is_empty() {
        let _ = writeln!(out, "Must act: {}", p.must_act.join(", "));
    }
    for f in &p.findings {
        let _ = writeln!(
            out,
            "\n{} — {} must act",
            f.code,
            crate::diagnose::who_acts(f)
        );
        let _ = writeln!(out, "  {}", f.explanation);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "  Fix: $ {}", fix.cli);
        }
    }
    match (p.fixes_verified, &p.fixes_unverified) {
        (Some(true), _) => {
            let _ = writeln!(
                out,
                "\nThe fix restores the path (verified by re-evaluation)."
            );
        }
        (Some(false), why) => {
            let _ = writeln!(
                out,
                "\nThe fix is not verified{}",
                why.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
            );
        }
        (None, _) => {}
    }
    out
}
