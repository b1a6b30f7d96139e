//! Glob patterns with `*` (any run of characters, possibly empty) and `?` (exactly one
//! character), compiled once when a policy is checked and matched many times.
//!
//! There is no escape syntax in IAM globs; text that must stay literal (the value a policy
//! variable resolved to) is added as [`Elem::Lit`] directly.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    /// Literal text.
    Lit(Box<str>),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    elems: Vec<Elem>,
    kind: Kind,
}

/// Shapes worth a fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `*` alone.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// `prefix*`.
    Prefix(Box<str>),
    /// Anything else.
    General,
}

impl Pattern {
    /// Compiles `text`, treating `*` and `?` as wildcards.
    pub fn glob(text: &str) -> Pattern {
        Pattern::from_elems(parse_glob(text))
    }

    /// A pattern matching exactly `text`.
    pub fn literal(text: &str) -> Pattern {
        Pattern::from_elems(vec![Elem::Lit(text.into())])
    }

    /// Builds a pattern from elements, merging adjacent literals and stars.
    pub fn from_elems(raw: Vec<Elem>) -> Pattern {
        let mut elems: Vec<Elem> = Vec::with_capacity(raw.len());
        for e in raw {
            match (elems.last_mut(), e) {
                (_, Elem::Lit(s)) if s.is_empty() => {}
                (Some(Elem::Lit(prev)), Elem::Lit(s)) => {
                    let mut joined = String::with_capacity(prev.len() + s.len());
                    joined.push_str(prev);
                    joined.push_str(&s);
                    *prev = joined.into();
                }
                (Some(Elem::Star), Elem::Star) => {}
                (_, e) => elems.push(e),
            }
        }
        let kind = match elems.as_slice() {
            [Elem::Star] => Kind::Any,
            [] => Kind::Exact("".into()),
            [Elem::Lit(s)] => Kind::Exact(s.clone()),
            [Elem::Lit(s), Elem::Star] => Kind::Prefix(s.clone()),
            _ => Kind::General,
        };
        Pattern { elems, kind }
    }

    /// The elements of the pattern.
    pub fn elems(&self) -> &[Elem] {
        &self.elems
    }

    /// Whether the pattern is `*` alone.
    pub fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// The pattern as one literal comparison, when it is one: `(text, true)` when it matches
    /// exactly `text`, `(prefix, false)` when it matches every input starting with `prefix`
    /// (`prefix*`, or `*` alone with an empty prefix).
    pub(crate) fn literal_shape(&self) -> Option<(&str, bool)> {
        match &self.kind {
            Kind::Any => Some(("", false)),
            Kind::Exact(s) => Some((s, true)),
            Kind::Prefix(p) => Some((p, false)),
            Kind::General => None,
        }
    }

    /// Whether the pattern contains a wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.elems.iter().any(|e| !matches!(e, Elem::Lit(_)))
    }

    /// Whether `input` matches the whole pattern (case-sensitive).
    #[inline]
    pub fn is_match(&self, input: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(s) => &**s == input,
            Kind::Prefix(p) => input.starts_with(&**p),
            Kind::General => match_elems(&self.elems, input),
        }
    }

    /// A copy with every literal lowercased (for case-insensitive matching against
    /// lowercased input).
    pub fn to_lowercase(&self) -> Pattern {
        Pattern::from_elems(
            self.elems
                .iter()
                .map(|e| match e {
                    Elem::Lit(s) => Elem::Lit(s.to_lowercase().into()),
                    other => other.clone(),
                })
                .collect(),
        )
    }
}

/// Splits glob text into elements.
pub fn parse_glob(text: &str) -> Vec<Elem> {
    let mut out = Vec::new();
    let mut lit = String::new();
    for c in text.chars() {
        match c {
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Elem::Lit(std::mem::take(&mut lit).into()));
                }
                out.push(if c == '*' { Elem::Star } else { Elem::One });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Elem::Lit(lit.into()));
    }
    out
}

/// Backtracking matcher: on a mismatch, retry from the last `*` one character further.
/// Linear in practice; worst case O(n·m), never exponential, because only the most recent
/// star is remembered (a later star subsumes the choices of an earlier one).
fn match_elems(elems: &[Elem], input: &str) -> bool {
    let mut ei = 0usize; // next element
    let mut pos = 0usize; // byte offset in input
    let mut star: Option<(usize, usize)> = None; // (element after the star, input offset it resumes from)
    loop {
        if let Some(e) = elems.get(ei) {
            match e {
                Elem::Star => {
                    ei += 1;
                    star = Some((ei, pos));
                    continue;
                }
                Elem::One => {
                    if let Some(c) = input.get(pos..).and_then(|r| r.chars().next()) {
                        ei += 1;
                        pos += c.len_utf8();
                        continue;
                    }
                }
                Elem::Lit(s) => {
                    if input.get(pos..).is_some_and(|r| r.starts_with(&**s)) {
                        ei += 1;
                        pos += s.len();
                        continue;
                    }
                }
            }
        } else if pos == input.len() {
            return true;
        }
        // Mismatch: let the last star absorb one more character, or fail.
        match star {
            Some((after, from)) => {
                let Some(c) = input.get(from..).and_then(|r| r.chars().next()) else {
                    return false;
                };
                let next = from + c.len_utf8();
                star = Some((after, next));
                ei = after;
                pos = next;
            }
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! globs {
        ($($name:ident: $pat:expr, $input:expr => $expected:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    assert_eq!(Pattern::glob($pat).is_match($input), $expected, "{} vs {}", $pat, $input);
                }
            )*
        };
    }

    globs! {
        star_alone_matches_empty: "*", "" => true;
        star_alone_matches_anything: "*", "a/b:c" => true;
        exact_match: "abc", "abc" => true;
        exact_mismatch_case: "abc", "ABC" => false;
        exact_requires_whole_string: "abc", "abcd" => false;
        prefix_star: "s3:Get*", "s3:GetObject" => true;
        prefix_star_empty_tail: "s3:Get*", "s3:Get" => true;
        prefix_star_mismatch: "s3:Get*", "s3:PutObject" => false;
        suffix_star: "*Object", "s3:GetObject" => true;
        inner_star: "a*c", "abbbc" => true;
        inner_star_needs_end: "a*c", "abbbcd" => false;
        question_one_char: "a?c", "abc" => true;
        question_not_zero: "a?c", "ac" => false;
        question_not_two: "a?c", "abbc" => false;
        question_multibyte: "a?c", "aéc" => true;
        star_crosses_slash: "b/*/test/*", "b/1/2/test/3/x.jpg" => true;
        star_matches_empty_segment: "b/*/test/*", "b//test/x" => true;
        star_needs_separator: "b/*/test/*", "b/test/x" => false;
        backtracking: "*ab*ab", "xabyabab" => true;
        backtracking_fail: "*ab*abz", "xabyabab" => false;
        many_stars: "***a***", "bab" => true;
        literal_star_text: "a", "*" => false;
    }

    #[test]
    fn literal_pattern_keeps_wildcards_literal() {
        assert!(Pattern::literal("a*").is_match("a*"));
        assert!(!Pattern::literal("a*").is_match("ab"));
    }

    #[test]
    fn lowercase_copy() {
        assert!(Pattern::glob("S3:Get*")
            .to_lowercase()
            .is_match("s3:getobject"));
    }
}
