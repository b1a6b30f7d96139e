//! ARNs and ARN patterns.
//!
//! An ARN is `arn:partition:service:region:account:resource`; it is split on the first five
//! colons only, because the resource part may itself contain `:` and `/`. Patterns are
//! matched segment by segment, so a wildcard never absorbs one of those five colons
//! (the `ArnLike` rule, which the `Resource` element follows too); inside the resource part
//! `*` crosses `/` freely.

use crate::pattern::{Elem, Pattern};

/// The six parts of an ARN, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    /// `s3`, `kms`, `iam`, `sts`, ...
    pub service: &'a str,
    /// Empty for global services and S3.
    pub region: &'a str,
    /// Empty for S3.
    pub account: &'a str,
    /// Everything after the fifth colon.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `text` into its parts; `None` when it is not an ARN.
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let mut it = text.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        (arn == "arn" && !partition.is_empty() && !service.is_empty()).then_some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

/// A compiled ARN pattern: one glob per segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnPattern {
    // INVARIANT: exactly six patterns: "arn", partition, service, region, account, resource.
    segments: Vec<Pattern>,
    /// `arn:aws:s3:::` when the first five segments are literal (the usual case): an input
    /// then matches iff it starts with this text and its resource part matches, one
    /// comparison instead of five. Literal segments hold no `:`, so a prefix match lines the
    /// segments up exactly.
    head: Option<Box<str>>,
}

impl ArnPattern {
    /// Compiles pattern text; `None` when it does not have the six ARN segments.
    pub fn parse(text: &str) -> Option<ArnPattern> {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        if parts.len() != 6 {
            return None;
        }
        Some(ArnPattern::new(
            parts.iter().map(|p| Pattern::glob(p)).collect(),
        ))
    }

    fn new(segments: Vec<Pattern>) -> ArnPattern {
        let mut head = String::new();
        let literal = segments.iter().take(5).all(|seg| match seg.elems() {
            [Elem::Lit(s)] => {
                head.push_str(s);
                head.push(':');
                true
            }
            [] => {
                head.push(':');
                true
            }
            _ => false,
        });
        ArnPattern {
            head: literal.then(|| head.into()),
            segments,
        }
    }

    /// Builds a pattern from already-compiled elements (a policy variable's value arrives as a
    /// literal element), splitting literals on the first five colons.
    pub fn from_elems(elems: Vec<Elem>) -> Option<ArnPattern> {
        let mut segments: Vec<Vec<Elem>> = vec![Vec::new()];
        for e in elems {
            match e {
                Elem::Lit(s) => {
                    let mut rest: &str = &s;
                    while segments.len() < 6 {
                        let Some(i) = rest.find(':') else { break };
                        let (head, tail) = rest.split_at(i);
                        if let Some(cur) = segments.last_mut() {
                            cur.push(Elem::Lit(head.into()));
                        }
                        segments.push(Vec::new());
                        rest = tail.get(1..).unwrap_or("");
                    }
                    if let Some(cur) = segments.last_mut() {
                        cur.push(Elem::Lit(rest.into()));
                    }
                }
                other => {
                    if let Some(cur) = segments.last_mut() {
                        cur.push(other);
                    }
                }
            }
        }
        if segments.len() != 6 {
            return None;
        }
        Some(ArnPattern::new(
            segments.into_iter().map(Pattern::from_elems).collect(),
        ))
    }

    /// Whether `input` (an ARN) matches, segment by segment.
    pub fn is_match(&self, input: &str) -> bool {
        if let (Some(head), Some(resource)) = (&self.head, self.segments.get(5)) {
            return input
                .strip_prefix(&**head)
                .is_some_and(|rest| resource.is_match(rest));
        }
        self.is_match_segments(input)
    }

    /// The reference rule: split the input on its first five colons and match each segment.
    fn is_match_segments(&self, input: &str) -> bool {
        let mut parts = input.splitn(6, ':');
        for seg in &self.segments {
            match parts.next() {
                Some(p) if seg.is_match(p) => {}
                _ => return false,
            }
        }
        true
    }

    /// Whether an ARN already split into its six parts matches (the evaluator splits the
    /// request's resource once rather than once per policy entry).
    pub fn is_match_parts(&self, input: &str, parts: &[String]) -> bool {
        if self.head.is_some() {
            return self.is_match(input);
        }
        parts.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(parts)
                .all(|(seg, part)| seg.is_match(part))
    }

    /// Whether the pattern names a KMS alias (`arn:aws:kms:…:alias/…`): such an entry governs
    /// the alias, never the key it points to.
    pub fn is_kms_alias(&self) -> bool {
        self.service() == Some("kms")
            && matches!(self.segments.get(5).map(Pattern::elems), Some([Elem::Lit(s), ..]) if s.starts_with("alias/"))
    }

    /// Whether any segment holds a wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.segments.iter().any(Pattern::has_wildcard)
    }

    /// The service segment, when it is literal.
    pub fn service(&self) -> Option<&str> {
        match self.segments.get(2).map(Pattern::elems) {
            Some([Elem::Lit(s)]) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! arns {
        ($($name:ident: $pat:expr, $input:expr => $expected:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    let p = ArnPattern::parse($pat).expect("pattern");
                    assert_eq!(p.is_match($input), $expected, "{} vs {}", $pat, $input);
                }
            )*
        };
    }

    arns! {
        object_wildcard: "arn:aws:s3:::doc-example-bucket/*", "arn:aws:s3:::doc-example-bucket/reports/q1.csv" => true;
        bucket_arn_is_not_object: "arn:aws:s3:::doc-example-bucket", "arn:aws:s3:::doc-example-bucket/reports/q1.csv" => false;
        object_pattern_is_not_bucket: "arn:aws:s3:::doc-example-bucket/*", "arn:aws:s3:::doc-example-bucket" => false;
        case_sensitive_key: "arn:aws:s3:::b/Reports/*", "arn:aws:s3:::b/reports/x" => false;
        region_wildcard: "arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:us-west-2:111122223333:key/abc" => true;
        account_wildcard_question: "arn:aws:kms:us-west-2:11112222333?:key/*", "arn:aws:kms:us-west-2:111122223333:key/abc" => true;
        wildcard_does_not_cross_colon: "arn:aws:someservice:*:111122223333:finance/*", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt" => false;
        resource_part_may_hold_colons: "arn:aws:logs:us-east-1:1:log-group:g:*", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s" => true;
        alias_is_not_key: "arn:aws:kms:us-west-2:111122223333:alias/reports", "arn:aws:kms:us-west-2:111122223333:key/1234" => false;
        service_mismatch: "arn:aws:s3:::*", "arn:aws:kms:us-west-2:111122223333:key/1" => false;
    }

    #[test]
    fn literal_head_fast_path_agrees_with_segment_matching() {
        let patterns = [
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b",
            "arn:aws:kms:us-west-2:111122223333:key/*",
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:s3:::*",
            "arn:aws:iam::111122223333:role/a/*",
            "arn:aws-cn:s3:::b/*",
            "arn:aws:logs:us-east-1:1:log-group:g:*",
        ];
        let inputs = [
            "arn:aws:s3:::b/k",
            "arn:aws:s3:::b",
            "arn:aws:s3:::bb/k",
            "arn:aws:s3::1:b/k",
            "arn:aws:s3:::b/",
            "arn:aws:kms:us-west-2:111122223333:key/x",
            "arn:aws:kms:us-west-2:111122223334:key/x",
            "arn:aws:kms:us-west-2:111122223333:alias/x",
            "arn:aws:iam::111122223333:role/a/b",
            "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s",
            "arn:aws:s3",
            "*",
            "",
        ];
        for p in patterns {
            let pat = ArnPattern::parse(p).unwrap();
            for i in inputs {
                assert_eq!(pat.is_match(i), pat.is_match_segments(i), "{p} vs {i}");
            }
        }
    }

    #[test]
    fn parse_rejects_short() {
        assert!(ArnPattern::parse("arn:aws:s3").is_none());
        assert!(Arn::parse("bucket/key").is_none());
    }

    #[test]
    fn from_elems_splits_literals() {
        let p = ArnPattern::from_elems(vec![
            Elem::Lit("arn:aws:s3:::b/home/".into()),
            Elem::Lit("al*ce".into()),
            Elem::Star,
        ])
        .unwrap();
        assert!(p.is_match("arn:aws:s3:::b/home/al*ce/x"));
        assert!(!p.is_match("arn:aws:s3:::b/home/alxce/x"));
    }
}
