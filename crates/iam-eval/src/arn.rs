//! ARNs and ARN patterns.
//!
//! An ARN is `arn:partition:service:region:account:resource`; it is split on the first five
//! colons only, because the resource part may itself contain `:` and `/`.
//!
//! Two matching rules exist, because AWS documents two:
//!
//! * **`ArnLike` / `ArnEquals`** ([`ArnPattern::parse`]): segment by segment, so a wildcard never
//!   absorbs one of the five colons; inside the resource part `*` crosses `/` and `:` freely.
//! * **The `Resource` / `NotResource` element** ([`ArnPattern::parse_resource`]): "If the `*`
//!   wildcard is the last character of a resource ARN segment, it can expand to match beyond
//!   the colon boundaries"
//!   (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html>).
//!   A `*` followed by `:` or by the end of the pattern may match any run of characters,
//!   colons included; every other `*` and every `?` in the first five segments stays inside its
//!   segment. So `arn:aws:kms:*` covers every KMS key, and a `Deny` on it applies
//!   (docs/design.md, "The engine's decision table").

use crate::pattern::{parse_glob, Elem, Pattern};

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

/// A compiled ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnPattern {
    // INVARIANT: six patterns ("arn", partition, service, region, account, resource) for the
    // segment rule; for the resource rule, one per colon-separated segment of the text, at most
    // six (fewer for a short pattern such as `arn:aws:kms:*`).
    segments: Vec<Pattern>,
    /// `arn:aws:s3:::` when there are six segments and the first five are literal (the usual
    /// case): an input then matches iff it starts with this text and its resource part
    /// matches, one comparison instead of five. Literal segments hold no `:`, so a prefix
    /// match lines the segments up exactly; both rules agree on such patterns.
    head: Option<Box<str>>,
    /// With a literal `head`, when the resource part is literal or `literal*`: the whole
    /// pattern as one comparison of the input with `head` + that literal.
    whole: Option<Whole>,
    /// The `Resource`-element rule; `None` for the segment rule of `ArnLike`.
    resource: Option<ResourceRule>,
}

/// A whole ARN pattern that is one literal comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Whole {
    /// The input must equal the text.
    Exact(Box<str>),
    /// The input must start with the text.
    Prefix(Box<str>),
}

/// The `Resource`-element rule, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourceRule {
    toks: Vec<Tok>,
    /// `arn:aws:kms:` for `arn:aws:kms:*`: a literal followed by one colon-crossing star, the
    /// shape of the short guardrail patterns, matched with one `starts_with`.
    prefix_any: Option<Box<str>>,
    /// How many `:` the pattern's literal text holds. Every one of them consumes a `:` of the
    /// input, so an input with no more colons than this leaves none for a wildcard to absorb:
    /// the first five colons line up, and segment-by-segment matching (no allocation) gives
    /// the same answer as the general scan.
    colons: usize,
}

/// One element of a `Resource`-rule pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(Box<str>),
    /// `*`; `cross` when it may match `:` (it ends a segment, or lies in the resource part).
    Star {
        cross: bool,
    },
    /// `?`; `cross` when it may match `:` (in the resource part).
    One {
        cross: bool,
    },
}

impl ArnPattern {
    /// Compiles pattern text for the `ArnLike` rule (segment by segment); `None` when it does
    /// not have the six ARN segments.
    pub fn parse(text: &str) -> Option<ArnPattern> {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        if parts.len() != 6 {
            return None;
        }
        Some(ArnPattern::new(
            parts.iter().map(|p| Pattern::glob(p)).collect(),
            None,
        ))
    }

    /// Compiles the text of a `Resource` or `NotResource` entry (the colon rule in the module
    /// docs); `None` when it does not start with `arn:`. A pattern with fewer than six
    /// segments is valid: `arn:aws:kms:*` matches every KMS key ARN.
    pub fn parse_resource(text: &str) -> Option<ArnPattern> {
        if !text.starts_with("arn:") {
            return None;
        }
        ArnPattern::from_elems_resource(parse_glob(text))
    }

    fn new(segments: Vec<Pattern>, resource: Option<ResourceRule>) -> ArnPattern {
        let mut head = String::new();
        let literal = segments.len() == 6
            && segments.iter().take(5).all(|seg| match seg.elems() {
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
        let whole = match (literal, segments.get(5).and_then(Pattern::literal_shape)) {
            (true, Some((text, exact))) => {
                let mut all = String::with_capacity(head.len() + text.len());
                all.push_str(&head);
                all.push_str(text);
                Some(if exact {
                    Whole::Exact(all.into())
                } else {
                    Whole::Prefix(all.into())
                })
            }
            _ => None,
        };
        ArnPattern {
            head: literal.then(|| head.into()),
            whole,
            segments,
            resource,
        }
    }

    /// Builds an `ArnLike` pattern from already-compiled elements (a policy variable's value
    /// arrives as a literal element), splitting literals on the first five colons.
    pub fn from_elems(elems: Vec<Elem>) -> Option<ArnPattern> {
        let segments = split_segments(elems);
        if segments.len() != 6 {
            return None;
        }
        Some(ArnPattern::new(
            segments.into_iter().map(Pattern::from_elems).collect(),
            None,
        ))
    }

    /// Builds a `Resource`-rule pattern from already-compiled elements (see
    /// [`ArnPattern::parse_resource`]); `None` when the text does not start with `arn:`.
    pub fn from_elems_resource(elems: Vec<Elem>) -> Option<ArnPattern> {
        // Normalise first (merged literals and stars), so that "followed by `:`" is a look at
        // the next element only.
        let elems = Pattern::from_elems(elems).elems().to_vec();
        if !matches!(elems.first(), Some(Elem::Lit(s)) if s.starts_with("arn:")) {
            return None;
        }
        let mut toks = Vec::with_capacity(elems.len());
        let mut colons = 0usize;
        for (i, e) in elems.iter().enumerate() {
            let in_resource_part = colons >= 5;
            match e {
                Elem::Lit(s) => {
                    colons += s.matches(':').count();
                    toks.push(Tok::Lit(s.clone()));
                }
                Elem::Star => {
                    let ends_segment = match elems.get(i + 1) {
                        None => true,
                        Some(Elem::Lit(next)) => next.starts_with(':'),
                        Some(_) => false,
                    };
                    toks.push(Tok::Star {
                        cross: in_resource_part || ends_segment,
                    });
                }
                Elem::One => toks.push(Tok::One {
                    cross: in_resource_part,
                }),
            }
        }
        let literal_colons = colons;
        let prefix_any = match toks.as_slice() {
            [Tok::Lit(p), Tok::Star { cross: true }] => Some(p.clone()),
            _ => None,
        };
        let segments = split_segments(elems)
            .into_iter()
            .map(Pattern::from_elems)
            .collect();
        Some(ArnPattern::new(
            segments,
            Some(ResourceRule {
                toks,
                prefix_any,
                colons: literal_colons,
            }),
        ))
    }

    /// Whether `input` (an ARN) matches.
    pub fn is_match(&self, input: &str) -> bool {
        match &self.whole {
            Some(Whole::Exact(text)) => return input == &**text,
            Some(Whole::Prefix(text)) => return input.starts_with(&**text),
            None => {}
        }
        if let (Some(head), Some(resource)) = (&self.head, self.segments.get(5)) {
            return input
                .strip_prefix(&**head)
                .is_some_and(|rest| resource.is_match(rest));
        }
        match &self.resource {
            Some(rule)
                if self.segments.len() == 6
                    && input.bytes().filter(|&b| b == b':').count() <= rule.colons =>
            {
                self.is_match_segments(input)
            }
            Some(rule) => rule.is_match(input),
            None => self.is_match_segments(input),
        }
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
        if self.head.is_some() || self.resource.is_some() {
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

impl ResourceRule {
    fn is_match(&self, input: &str) -> bool {
        match &self.prefix_any {
            Some(p) => input.starts_with(&**p),
            None => match_toks(&self.toks, input),
        }
    }
}

/// Splits elements into segments on the first five colons of their literal text.
fn split_segments(elems: Vec<Elem>) -> Vec<Vec<Elem>> {
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
    segments
}

/// Matches `input` against `toks` by tracking every input offset reachable after each token:
/// O(input × tokens), whatever the stars. (The one-backtrack-point matcher of
/// [`Pattern`] is not correct once some stars may not cross `:`, and plain backtracking can be
/// exponential on patterns like `*a*a*a*b`.) Offsets are bytes; `:` is ASCII, so testing a
/// byte for `:` never splits a character, and a literal or `?` never starts inside one.
fn match_toks(toks: &[Tok], input: &str) -> bool {
    let bytes = input.as_bytes();
    let n = bytes.len();
    let mut cur = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    if let Some(first) = cur.first_mut() {
        *first = true;
    }
    for tok in toks {
        next.iter_mut().for_each(|x| *x = false);
        match tok {
            Tok::Lit(s) => {
                for (p, _) in cur.iter().enumerate().filter(|(_, &on)| on) {
                    if bytes.get(p..).is_some_and(|r| r.starts_with(s.as_bytes())) {
                        if let Some(x) = next.get_mut(p + s.len()) {
                            *x = true;
                        }
                    }
                }
            }
            Tok::One { cross } => {
                for (p, _) in cur.iter().enumerate().filter(|(_, &on)| on) {
                    if let Some(c) = input.get(p..).and_then(|r| r.chars().next()) {
                        if *cross || c != ':' {
                            if let Some(x) = next.get_mut(p + c.len_utf8()) {
                                *x = true;
                            }
                        }
                    }
                }
            }
            Tok::Star { cross } => {
                let mut run = false;
                for (p, x) in next.iter_mut().enumerate() {
                    let absorbed = p
                        .checked_sub(1)
                        .and_then(|q| bytes.get(q))
                        .is_some_and(|&b| *cross || b != b':');
                    run = cur.get(p).copied().unwrap_or(false) || (run && absorbed);
                    *x = run;
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        if !cur.contains(&true) {
            return false;
        }
    }
    cur.get(n).copied().unwrap_or(false)
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

    macro_rules! resources {
        ($($name:ident: $pat:expr, $input:expr => $expected:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    let p = ArnPattern::parse_resource($pat).expect("pattern");
                    assert_eq!(p.is_match($input), $expected, "{} vs {}", $pat, $input);
                }
            )*
        };
    }

    const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234";

    resources! {
        res_short_service_star: "arn:aws:kms:*", KEY => true;
        res_short_service_star_other_service: "arn:aws:kms:*", "arn:aws:s3:::b/k" => false;
        res_short_partition_star: "arn:aws:*", KEY => true;
        res_short_partition_star_other_partition: "arn:aws:*", "arn:aws-cn:kms:cn-north-1:111122223333:key/1" => false;
        res_arn_star: "arn:*", "arn:aws-cn:s3:::b/k" => true;
        res_missing_account_segment: "arn:aws:kms:*:key/*", KEY => true;
        res_missing_account_segment_alias: "arn:aws:kms:*:key/*", "arn:aws:kms:us-west-2:111122223333:alias/a" => false;
        res_inner_star_stays_in_segment: "arn:aws:kms:us*3333:key/*", KEY => false;
        res_inner_star_in_segment_matches: "arn:aws:kms:us-*-2:111122223333:key/*", KEY => true;
        res_question_stays_in_segment: "arn:aws:kms:us-west-2?111122223333:key/*", KEY => false;
        res_region_star_crosses: "arn:aws:someservice:*:111122223333:finance/*", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt" => true;
        res_six_segments_as_before: "arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/2/test/3/x.jpg" => true;
        res_six_segments_needs_separator: "arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/test/x" => false;
        res_resource_part_question_crosses_colon: "arn:aws:logs:us-east-1:1:log-group:g?x", "arn:aws:logs:us-east-1:1:log-group:g:x" => true;
        res_short_without_star_matches_nothing: "arn:aws:kms", KEY => false;
        res_backtracking: "arn:aws:s3:::*ab*ab", "arn:aws:s3:::xabyabab" => true;
        res_many_stars_no_blowup: "arn:aws:s3:::*a*a*a*a*a*a*a*a*a*a*a*a*b", "arn:aws:s3:::aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac" => false;
        res_multibyte_question: "arn:aws:s3:::a?c", "arn:aws:s3:::aéc" => true;
    }

    #[test]
    fn segment_shortcut_agrees_with_the_general_scan() {
        let patterns = [
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:kms:us-*:*:key/*",
            "arn:aws:someservice:*:111122223333:finance/*",
            "arn:*:s3:::b/*",
            "arn:aws:logs:*:1:log-group:g:*",
            "arn:aws:kms:us-west-2?111122223333:key/*",
            "arn:aws:kms:*",
            "arn:aws:kms:*:key/*",
        ];
        let inputs = [
            KEY,
            "arn:aws:kms:us-west-2:111122223334:key/1234",
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            "arn:aws:s3:::b/k",
            "arn:aws:s3:::b/k:with:colons",
            "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s",
            "arn:aws:kms",
            "",
        ];
        for p in patterns {
            let pat = ArnPattern::parse_resource(p).unwrap();
            let rule = pat.resource.as_ref().unwrap();
            for i in inputs {
                assert_eq!(pat.is_match(i), match_toks(&rule.toks, i), "{p} vs {i}");
            }
        }
    }

    #[test]
    fn parse_resource_needs_arn_prefix() {
        assert!(ArnPattern::parse_resource("bucket/*").is_none());
        assert!(ArnPattern::parse_resource("arn:aws:kms:*").is_some());
    }

    #[test]
    fn resource_rule_agrees_with_segment_rule_on_six_segment_patterns_without_colon_crossing() {
        // Where no input has extra colons in its first five segments, the two rules agree.
        let patterns = [
            "arn:aws:s3:::b/*",
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:kms:us-west-2:11112222333?:key/*",
            "arn:*:s3:::b/*",
            "arn:aws:logs:us-east-1:1:log-group:g:*",
        ];
        let inputs = [
            "arn:aws:s3:::b/k",
            "arn:aws-cn:s3:::b/k",
            "arn:aws:kms:us-west-2:111122223333:key/x",
            "arn:aws:kms:us-west-2:111122223334:alias/x",
            "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s",
        ];
        for p in patterns {
            let seg = ArnPattern::parse(p).unwrap();
            let res = ArnPattern::parse_resource(p).unwrap();
            for i in inputs {
                assert_eq!(seg.is_match(i), res.is_match(i), "{p} vs {i}");
            }
        }
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
