//! The organization sweep's messages (issue 11): one per account per sweep when something
//! changed, and one when the sweep completes. Both follow the diagnoses' conventions (a JSON
//! body with a `text` array for e-mail, attributes for filter policies), with `kind` =
//! `sweep` or `sweep_complete`. The text is written to be read in a chat window: the worst
//! changes first, at most [`LINES`] of them, the rest counted.

use std::fmt::Write as _;

use serde_json::Value;

use super::{clip_ascii, fit, short_principal, Attribute, AttributeValue, Head, Notification};
use crate::impact::org::{AccountSweep, SweepAdvisory, SweepChange, SweepChangeKind, SweepTotals};

/// Changes listed one per line; the rest are counted.
pub const LINES: usize = 10;

/// The subject's limit (SNS: 100 characters).
const SUBJECT: usize = 99;

fn line(c: &SweepChange) -> String {
    let p = &c.path;
    let mut out = format!(
        "{} {} -> s3://{}/{}",
        c.kind.as_str().to_ascii_uppercase(),
        short_principal(&p.principal),
        p.bucket,
        p.object
    );
    if let Some(a) = &p.principal_account {
        let _ = write!(out, " (principal in {a})");
    }
    if !p.blocking.is_empty() && c.kind != SweepChangeKind::Gone {
        let _ = write!(out, ": {}", p.blocking.join(", "));
    }
    if !p.must_act.is_empty() && c.kind != SweepChangeKind::Gone {
        let _ = write!(out, "; must act: {}", p.must_act.join(", "));
    }
    out
}

fn advisory_line(a: &SweepAdvisory) -> String {
    format!(
        "ADVISORY {} on s3://{} (read from other accounts: {} path{})",
        a.code,
        a.bucket,
        a.paths,
        if a.paths == 1 { "" } else { "s" }
    )
}

/// The text of an account's summary.
pub fn sweep_text(s: &AccountSweep) -> String {
    let mut out = String::new();
    let counts: Vec<String> = [
        SweepChangeKind::Broken,
        SweepChangeKind::Denied,
        SweepChangeKind::Opened,
        SweepChangeKind::Fixed,
        SweepChangeKind::Undecided,
        SweepChangeKind::Gone,
    ]
    .into_iter()
    .filter_map(|k| {
        let n = s.count(k);
        (n > 0).then(|| format!("{n} {}", k.as_str()))
    })
    .chain((!s.advisories.is_empty()).then(|| format!("{} new advisories", s.advisories.len())))
    .collect();
    let _ = writeln!(
        out,
        "Account {}, sweep {}: {} ({} paths, {} denied){}",
        s.account,
        s.sweep,
        counts.join(", "),
        s.paths,
        s.denied,
        if s.first_sight {
            "; first sweep of this account"
        } else {
            ""
        }
    );
    // Changes first (the worst of them first), then advisories, within one budget of lines.
    let lines: Vec<String> = s
        .changes
        .iter()
        .map(line)
        .chain(s.advisories.iter().map(advisory_line))
        .collect();
    for l in lines.iter().take(LINES) {
        let _ = writeln!(out, "{l}");
    }
    if lines.len() > LINES {
        let _ = writeln!(out, "... and {} more", lines.len() - LINES);
    }
    out
}

fn string(name: &'static str, value: &str) -> Attribute {
    Attribute {
        name,
        value: AttributeValue::String(value.to_owned()),
    }
}

/// The message for one account's changes in one sweep.
pub fn sweep_notification(s: &AccountSweep) -> Notification {
    let worst = s.changes.first();
    let head_part = match (worst, s.advisories.first()) {
        (Some(c), _) => format!(
            "SWEEP {} {}",
            c.kind.as_str().to_ascii_uppercase(),
            s.changes.len()
        ),
        (None, Some(_)) => format!("SWEEP ADVISORY {}", s.advisories.len()),
        (None, None) => "SWEEP no change".to_owned(),
    };
    let first = worst
        .map(line)
        .or_else(|| s.advisories.first().map(advisory_line))
        .unwrap_or_default();
    let subject = clip_ascii(&format!("{head_part} | {} | {first}", s.account), SUBJECT);
    let mut codes: Vec<String> = s
        .changes
        .iter()
        .flat_map(|c| c.path.blocking.iter().cloned())
        .chain(s.advisories.iter().map(|a| a.code.clone()))
        .collect();
    codes.sort();
    codes.dedup();
    let kinds: Vec<String> = {
        let mut k: Vec<String> = s
            .changes
            .iter()
            .map(|c| c.kind.as_str().to_owned())
            .collect();
        k.dedup();
        if !s.advisories.is_empty() {
            k.push("advisory".to_owned());
        }
        k
    };
    let head: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("kind", Value::from("sweep")),
        ("sweep", Value::from(s.sweep.as_str())),
        ("account", Value::from(s.account.as_str())),
        ("changes", Value::from(kinds.clone())),
        ("finding_codes", Value::from(codes.clone())),
    ];
    let attributes = vec![
        string("kind", "sweep"),
        string("sweep", &s.sweep),
        string("resource_account", &s.account),
        Attribute {
            name: "changes",
            value: AttributeValue::StringArray(kinds),
        },
        Attribute {
            name: "finding_codes",
            value: AttributeValue::StringArray(codes),
        },
    ];
    let machine = serde_json::to_value(s).unwrap_or(Value::Null);
    fit(
        subject,
        attributes,
        head,
        ("account_sweep", machine),
        sweep_text(s),
    )
}

/// The message that closes a sweep.
pub fn completion_notification(t: &SweepTotals) -> Notification {
    let subject = clip_ascii(
        &format!(
            "SWEEP COMPLETE {} | {}/{} accounts, {} failed | {} paths, {} denied, {} broken",
            t.sweep,
            t.swept,
            t.planned,
            t.failed.len(),
            t.paths_checked,
            t.denied,
            t.broken
        ),
        SUBJECT,
    );
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Sweep {} (started {}) finished in {:.0} s.",
        t.sweep, t.started, t.duration_seconds
    );
    let _ = writeln!(
        text,
        "Accounts: {} planned, {} swept, {} failed; {} with changes published.",
        t.planned,
        t.swept,
        t.failed.len(),
        t.changed_accounts
    );
    let _ = writeln!(
        text,
        "Paths: {} checked, {} denied, {} broken since the last sweep.",
        t.paths_checked, t.denied, t.broken
    );
    for (account, why) in t.failed.iter().take(LINES) {
        let _ = writeln!(text, "FAILED {account}: {why}");
    }
    if t.failed.len() > LINES {
        let _ = writeln!(text, "... and {} more failed", t.failed.len() - LINES);
    }
    let head: Head = vec![
        ("subject", Value::from(subject.clone())),
        ("kind", Value::from("sweep_complete")),
        ("sweep", Value::from(t.sweep.as_str())),
    ];
    let attributes = vec![string("kind", "sweep_complete"), string("sweep", &t.sweep)];
    let machine = serde_json::to_value(t).unwrap_or(Value::Null);
    fit(subject, attributes, head, ("sweep", machine), text)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::diagnose::Verdict;
    use crate::impact::state::PathVerdict;

    fn change(n: usize, kind: SweepChangeKind) -> SweepChange {
        SweepChange {
            kind,
            before: Some(Verdict::Allowed),
            path: PathVerdict {
                principal: format!("arn:aws:iam::222222222222:role/reader-{n}"),
                bucket: format!("bucket-{n}"),
                object: "*".into(),
                action: "s3:GetObject".into(),
                probe: String::new(),
                verdict: Verdict::Denied,
                blocking: vec!["BUCKET_POLICY_NO_ALLOW".into()],
                must_act: vec!["111111111111".into()],
                principal_account: Some("222222222222".into()),
                resource_account: Some("111111111111".into()),
                advisories: Vec::new(),
            },
        }
    }

    #[test]
    fn a_summary_fits_a_chat_window_worst_first_the_rest_counted() {
        let mut changes: Vec<SweepChange> = (0..14)
            .map(|n| change(n, SweepChangeKind::Broken))
            .collect();
        changes.push(change(99, SweepChangeKind::Fixed));
        let s = AccountSweep {
            sweep: "20261203T150000Z-abcd1234".into(),
            account: "111111111111".into(),
            first_sight: false,
            paths: 40,
            denied: 14,
            changes,
            advisories: Vec::new(),
        };
        let text = sweep_text(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + LINES + 1, "{text}");
        assert!(lines[0].contains("14 broken, 1 fixed"), "{text}");
        assert!(lines[1].starts_with("BROKEN reader-0 -> s3://bucket-0/* (principal in 222222222222): BUCKET_POLICY_NO_ALLOW; must act: 111111111111"), "{text}");
        assert_eq!(lines[LINES + 1], "... and 5 more");
        let n = sweep_notification(&s);
        assert!(
            n.subject.len() < 100 && n.subject.starts_with("SWEEP BROKEN 15 | 111111111111"),
            "{}",
            n.subject
        );
        let body: serde_json::Value = serde_json::from_str(&n.message).unwrap();
        assert_eq!(body["kind"], "sweep");
        assert_eq!(body["changes"], serde_json::json!(["broken", "fixed"]));
        assert!(n
            .attributes
            .iter()
            .any(|a| a.name == "kind" && a.value == AttributeValue::String("sweep".into())));
    }
}
