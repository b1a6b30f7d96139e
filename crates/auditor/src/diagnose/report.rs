//! Words: the explanation of each finding and the text report an on-call engineer reads first.

use std::fmt::Write as _;

use super::{Diagnosis, Verdict};

/// The text report: the verdict in one line, then each cause with its fix, the account that
/// must act and the commands.
pub fn render_text(d: &Diagnosis) -> String {
    let mut out = String::new();
    let blocking: Vec<_> = d.blocking().collect();
    let headline = match d.verdict {
        Verdict::Denied => format!(
            "DENIED: {} cause{} block{} {} ({} confidence)",
            blocking.len(),
            if blocking.len() == 1 { "" } else { "s" },
            if blocking.len() == 1 { "s" } else { "" },
            d.principal,
            confidence(d)
        ),
        Verdict::Allowed => format!(
            "ALLOWED: nothing in the snapshot blocks {} ({} confidence)",
            d.principal,
            confidence(d)
        ),
        Verdict::Unknown => format!(
            "UNKNOWN: nothing visible blocks {}, but evidence is missing ({} confidence)",
            d.principal,
            confidence(d)
        ),
    };
    let _ = writeln!(out, "{headline}");
    for h in &d.hops {
        let by = if h.denied_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", h.denied_by.join(", "))
        };
        let _ = writeln!(
            out,
            "  {:<20} {:<16}{by}  {}",
            h.action, h.decision, h.resource
        );
    }
    if let (Some(first), true) = (blocking.first(), blocking.len() > 1) {
        let _ = writeln!(
            out,
            "\nAWS stops at the first wall: {} ({}), and reports only that one. Fix them all: fixing one alone still leaves the request denied.",
            first.code,
            first.action.as_deref().unwrap_or("")
        );
    }
    for (i, f) in blocking.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} [{}] — {} must act",
            i + 1,
            f.code,
            f.action.as_deref().unwrap_or("-"),
            crate::diagnose::who_acts(f)
        );
        let _ = writeln!(out, "   {}", f.explanation);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "   Fix ({}):", fix.artifact);
            if let Some(st) = &fix.statement {
                let _ = writeln!(
                    out,
                    "     add statement: {}",
                    serde_json::to_string(st).unwrap_or_default()
                );
            }
            for n in &fix.notes {
                let _ = writeln!(out, "     - {n}");
            }
            let _ = writeln!(out, "     $ {}", fix.cli);
        }
    }
    let advisory: Vec<_> = d.findings.iter().filter(|f| !f.blocking).collect();
    if !advisory.is_empty() {
        let _ = writeln!(out, "\nAlso noticed:");
        for f in advisory {
            let _ = writeln!(out, "  - {}: {}", f.code, f.explanation);
        }
    }
    if d.verdict == Verdict::Denied {
        let _ = writeln!(
            out,
            "\nFixes verified by re-evaluation: {}",
            if d.fixes_verified {
                "yes — with all of them applied the request is allowed".to_owned()
            } else {
                format!(
                    "no — {}",
                    d.fixes_unverified
                        .as_deref()
                        .unwrap_or("some causes cannot be fixed by a policy change")
                )
            }
        );
    }
    if !d.assumptions.is_empty() {
        let _ = writeln!(out, "\nAssumptions:");
        for a in &d.assumptions {
            let _ = writeln!(out, "  - {a}");
        }
    }
    // When nothing visible blocks, the cause lies in what was not seen: name it.
    if d.verdict != super::Verdict::Denied && !d.coverage.is_empty() {
        let _ = writeln!(out, "\n{}", coverage_sentence(&d.coverage));
    }
    if let Some(e) = &d.event {
        let _ = writeln!(
            out,
            "\nEvent: {} {} at {} (eventID {}, recorded in {})",
            e.event_source.as_deref().unwrap_or("?"),
            e.event_name.as_deref().unwrap_or("?"),
            e.event_time.as_deref().unwrap_or("?"),
            e.event_id.as_deref().unwrap_or("?"),
            e.recipient_account.as_deref().unwrap_or("?")
        );
    }
    out
}

/// One sentence: the layers seen, and those not seen with why.
pub(super) fn coverage_sentence(c: &[super::coverage::LayerCoverage]) -> String {
    use super::coverage::{label, Seen};
    let seen: Vec<&str> = c
        .iter()
        .filter(|l| l.seen == Seen::Seen)
        .map(|l| label(l.layer))
        .collect();
    let unseen: Vec<String> = c
        .iter()
        .filter(|l| l.seen == Seen::NotSeen)
        .map(|l| format!("{} ({})", label(l.layer), l.why))
        .collect();
    let seen = if seen.is_empty() {
        "none".to_owned()
    } else {
        seen.join(", ")
    };
    if unseen.is_empty() {
        format!("Layers checked: {seen}; every layer that applies to this request was seen.")
    } else {
        format!(
            "Layers checked: {seen}. Not seen, left to check: {}.",
            unseen.join("; ")
        )
    }
}

fn confidence(d: &Diagnosis) -> &'static str {
    match d.confidence {
        super::Confidence::High => "high",
        super::Confidence::Medium => "medium",
        super::Confidence::Low => "low",
    }
}
