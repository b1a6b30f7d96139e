//! ARN helpers for locating principals, buckets and keys, on top of the engine's [`Arn`].

// The engine's ARN splitter and account-id check: one definition for the whole project.
pub(crate) use iam_eval::arn::Arn;
pub(crate) use iam_eval::principal::is_account_id;

/// The partition a Region belongs to (for building ARNs that the record did not carry).
pub(crate) fn partition_for_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A KMS key ARN split into Region, account and key id; `None` for anything else (alias
/// ARNs included).
pub(crate) fn kms_key_arn(text: &str) -> Option<(&str, &str, &str)> {
    let arn = Arn::parse(text)?;
    let key_id = arn.resource.strip_prefix("key/")?;
    (arn.service == "kms"
        && !arn.region.is_empty()
        && is_account_id(arn.account)
        && !key_id.is_empty())
    .then_some((arn.region, arn.account, key_id))
}

/// An S3 bucket or object ARN split into bucket and optional object key.
pub(crate) fn s3_arn(text: &str) -> Option<(&str, Option<&str>)> {
    let arn = Arn::parse(text)?;
    if arn.service != "s3" || !arn.region.is_empty() || !arn.account.is_empty() {
        return None;
    }
    match arn.resource.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() => Some((bucket, Some(key))),
        Some(_) => None,
        None if !arn.resource.is_empty() => Some((arn.resource, None)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_six_parts() {
        let arn = Arn::parse("arn:aws:sts::444455556666:assumed-role/reader/s:1").unwrap();
        assert_eq!(arn.partition, "aws");
        assert_eq!(arn.service, "sts");
        assert_eq!(arn.region, "");
        assert_eq!(arn.account, "444455556666");
        assert_eq!(arn.resource, "assumed-role/reader/s:1");
        assert_eq!(Arn::parse("arn:aws:s3"), None);
        assert_eq!(Arn::parse("not:an:arn:x:y:z"), None);
    }

    #[test]
    fn key_and_s3_arns() {
        assert_eq!(
            kms_key_arn("arn:aws:kms:us-west-2:111122223333:key/abc"),
            Some(("us-west-2", "111122223333", "abc"))
        );
        assert_eq!(
            kms_key_arn("arn:aws:kms:us-west-2:111122223333:alias/abc"),
            None
        );
        assert_eq!(
            s3_arn("arn:aws:s3:::b/k/x.csv"),
            Some(("b", Some("k/x.csv")))
        );
        assert_eq!(s3_arn("arn:aws:s3:::b"), Some(("b", None)));
        assert_eq!(
            s3_arn("arn:aws:s3:us-east-1:111122223333:accesspoint/ap"),
            None
        );
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333"));
        assert_eq!(partition_for_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_for_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_for_region("eu-west-1"), "aws");
    }
}
