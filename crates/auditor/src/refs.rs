//! References to AWS things — partitions, buckets, objects, keys, IAM principals and service
//! names — and the only code in the crate that formats or interprets their ARNs and DNS names.
//!
//! Everything the diagnosis writes into a hop, a finding, a fix or a CLI command goes through
//! here, so that a request in `aws-cn` or `aws-us-gov` is answered with ARNs and service names
//! of its own partition. See docs/design.md ("Partitions") and AWS's pages "Identify AWS
//! resources with Amazon Resource Names (ARNs)" and "ARNs for Amazon Web Services in China".

use std::fmt;

use serde::{Serialize, Serializer};

// The engine's ARN splitter and account-id check: one definition for the whole project.
pub use iam_eval::arn::Arn;
pub use iam_eval::principal::is_account_id;

/// An AWS partition: the `arn:<partition>:` prefix of every ARN, and the DNS suffix of
/// every endpoint and service name in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Partition {
    /// `aws`: the commercial Regions.
    #[default]
    Aws,
    /// `aws-cn`: the China Regions (Beijing, Ningxia), DNS suffix `amazonaws.com.cn`.
    AwsCn,
    /// `aws-us-gov`: the AWS GovCloud (US) Regions.
    AwsUsGov,
}

impl Partition {
    /// Every partition the auditor knows.
    pub const ALL: [Partition; 3] = [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov];

    /// The partition named in an ARN (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn parse(text: &str) -> Option<Partition> {
        match text {
            "aws" => Some(Partition::Aws),
            "aws-cn" => Some(Partition::AwsCn),
            "aws-us-gov" => Some(Partition::AwsUsGov),
            _ => None,
        }
    }

    /// The partition a Region belongs to: `cn-*` is China, `us-gov-*` GovCloud, anything
    /// else (including an unknown or empty Region) the commercial partition.
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        }
    }

    /// The partition of an ARN, when it names one the auditor knows.
    pub fn of_arn(arn: &str) -> Option<Partition> {
        Arn::parse(arn).and_then(|a| Partition::parse(a.partition))
    }

    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    /// The DNS suffix of service endpoints: `amazonaws.com`, or `amazonaws.com.cn` in China.
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::AwsCn => "amazonaws.com.cn",
            Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
        }
    }

    /// The Regional endpoint name of a service, the value `kms:ViaService` carries when that
    /// service calls KMS for a caller: `s3.us-west-2.amazonaws.com`,
    /// `s3.cn-north-1.amazonaws.com.cn`.
    pub fn service_endpoint(self, service: &str, region: &str) -> String {
        format!("{service}.{region}.{}", self.dns_suffix())
    }

    /// An example Region of the partition, for placeholders in commands.
    pub fn example_region(self) -> &'static str {
        match self {
            Partition::Aws => "us-east-1",
            Partition::AwsCn => "cn-north-1",
            Partition::AwsUsGov => "us-gov-west-1",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Partition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The Region of a VPC endpoint service name (`com.amazonaws.us-west-2.s3`,
/// `cn.com.amazonaws.cn-north-1.s3`), as `ec2 describe-vpc-endpoints` shows it.
pub fn service_name_region(name: &str) -> Option<&str> {
    let rest = name
        .strip_prefix("com.amazonaws.")
        .or_else(|| name.strip_prefix("cn.com.amazonaws."))?;
    let (region, _service) = rest.split_once('.')?;
    (!region.is_empty()).then_some(region)
}

/// The HTTPS endpoint of Amazon EC2's Query API in `region`, the host the live collector
/// sends `DescribeVpcEndpoints` to: `https://ec2.us-west-2.amazonaws.com/`, in China
/// `https://ec2.cn-north-1.amazonaws.com.cn/`
/// (<https://docs.aws.amazon.com/general/latest/gr/ec2-service.html>). Requests to it are
/// signed for the service `ec2` ([`EC2_SIGNING_NAME`]).
pub fn ec2_endpoint(region: &str) -> String {
    format!(
        "https://{}/",
        Partition::of_region(region).service_endpoint("ec2", region)
    )
}

/// The service name EC2 requests are signed for (the credential scope
/// `<date>/<region>/ec2/aws4_request`).
pub const EC2_SIGNING_NAME: &str = "ec2";

/// Whether a CloudTrail `eventSource`, `invokedBy`, `sourceIPAddress` or user agent names the
/// AWS service `service` (`s3`, `kms`): `s3.amazonaws.com`, or the China form
/// `s3.amazonaws.com.cn`.
pub fn is_service_name(text: &str, service: &str) -> bool {
    text.strip_prefix(service)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|suffix| Partition::ALL.iter().any(|p| suffix == p.dns_suffix()))
}

/// The service a CloudTrail `eventSource` names (`s3` for `s3.amazonaws.com`, and for the
/// China form); `None` for text that is not a service name.
pub fn service_of(text: &str) -> Option<&str> {
    let (service, _) = text.split_once('.')?;
    is_service_name(text, service).then_some(service)
}

/// A service principal (`s3.amazonaws.com`) in a partition.
pub fn service_principal(partition: Partition, service: &str) -> String {
    format!("{service}.{}", partition.dns_suffix())
}

/// The URI of a predefined Amazon S3 group ACL grantee (`global/AllUsers`,
/// `global/AuthenticatedUsers`, `s3/LogDelivery`), as S3 documents it
/// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#specifying-grantee-predefined-groups).
pub fn s3_group_uri(group: &str) -> String {
    format!("http://acs.amazonaws.com/groups/{group}")
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketRef {
    /// The partition the bucket lives in.
    pub partition: Partition,
    /// The bucket name.
    pub name: String,
}

impl BucketRef {
    /// A bucket in `partition`.
    pub fn new(partition: Partition, name: impl Into<String>) -> BucketRef {
        BucketRef {
            partition,
            name: name.into(),
        }
    }

    /// `arn:<partition>:s3:::<bucket>`.
    pub fn arn(&self) -> String {
        format!("arn:{}:s3:::{}", self.partition, self.name)
    }

    /// The object `key` in this bucket.
    pub fn object(&self, key: impl Into<String>) -> ObjectRef {
        ObjectRef {
            bucket: self.clone(),
            key: Some(key.into()),
        }
    }

    /// `arn:<partition>:s3:::<bucket>/<pattern>`: a resource pattern over the bucket's objects
    /// (`*`, `reports/*`).
    pub fn objects_arn(&self, pattern: &str) -> String {
        format!("{}/{pattern}", self.arn())
    }
}

/// An S3 object, or any object of a bucket when the key is unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// The bucket.
    pub bucket: BucketRef,
    /// The object key; `None` stands for every object (`bucket/*`).
    pub key: Option<String>,
}

impl ObjectRef {
    /// `arn:<partition>:s3:::<bucket>/<key>`, or `…/*` when the key is unknown.
    pub fn arn(&self) -> String {
        self.bucket.objects_arn(self.key.as_deref().unwrap_or("*"))
    }
}

/// An S3 bucket or object ARN read back: partition, bucket and optional key.
pub fn parse_s3_arn(text: &str) -> Option<(Partition, &str, Option<&str>)> {
    let arn = Arn::parse(text)?;
    let partition = Partition::parse(arn.partition)?;
    if arn.service != "s3" || !arn.region.is_empty() || !arn.account.is_empty() {
        return None;
    }
    match arn.resource.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() => Some((partition, bucket, Some(key))),
        Some(_) => None,
        None if !arn.resource.is_empty() => Some((partition, arn.resource, None)),
        None => None,
    }
}

/// An S3 bucket or object ARN split into bucket and optional object key.
pub fn s3_arn(text: &str) -> Option<(&str, Option<&str>)> {
    parse_s3_arn(text).map(|(_, b, k)| (b, k))
}

/// An S3 access point of a general purpose bucket: `arn:<partition>:s3:<region>:<account>:accesspoint/<name>`
/// ("Referencing access points with ARNs, access point aliases, or virtual-hosted-style URIs",
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-points-naming.html>).
/// Multi-Region Access Points (`arn:aws:s3::<account>:accesspoint/<alias>.mrap`, no Region) are
/// not access points in this sense and are never parsed as one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AccessPointRef {
    /// The partition of the ARN.
    pub partition: Partition,
    /// The access point's Region.
    pub region: String,
    /// The account that owns the access point (not necessarily the bucket's owner).
    pub account: String,
    /// The access point name.
    pub name: String,
}

impl AccessPointRef {
    /// `arn:<partition>:s3:<region>:<account>:accesspoint/<name>`: the resource of requests
    /// about the access point itself, and the value of `s3:DataAccessPointArn`.
    pub fn arn(&self) -> String {
        format!(
            "arn:{}:s3:{}:{}:accesspoint/{}",
            self.partition, self.region, self.account, self.name
        )
    }

    /// `<access point ARN>/object/<key>` (`*` for an unknown key): the resource an object
    /// request through the access point is authorized on against the access point policy.
    pub fn object_arn(&self, key: Option<&str>) -> String {
        format!("{}/object/{}", self.arn(), key.unwrap_or("*"))
    }

    /// Reads an access point ARN or an access point object ARN: the access point and the
    /// object key, when the ARN names one. `None` for anything else (bucket ARNs, Multi-Region
    /// Access Points, S3 on Outposts).
    pub fn parse(text: &str) -> Option<(AccessPointRef, Option<&str>)> {
        let arn = Arn::parse(text)?;
        let partition = Partition::parse(arn.partition)?;
        if arn.service != "s3" || arn.region.is_empty() || !is_account_id(arn.account) {
            return None;
        }
        let rest = arn.resource.strip_prefix("accesspoint/")?;
        let (name, key) = match rest.split_once('/') {
            Some((name, tail)) => (name, Some(tail.strip_prefix("object/")?)),
            None => (rest, None),
        };
        if name.is_empty() || key == Some("") {
            return None;
        }
        Some((
            AccessPointRef {
                partition,
                region: arn.region.to_owned(),
                account: arn.account.to_owned(),
                name: name.to_owned(),
            },
            key,
        ))
    }
}

/// Whether a bucket name is an access point alias (`<name>-<suffix>-s3alias`): S3 accepts the
/// alias wherever a bucket name goes, and no bucket name may end in `-s3alias` (bucket naming
/// rules, <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>).
pub fn is_access_point_alias(bucket_name: &str) -> bool {
    bucket_name
        .strip_suffix("-s3alias")
        .is_some_and(|rest| !rest.is_empty())
}

/// The access point of an access point hostname,
/// `<name>-<account>.s3-accesspoint.<region>.<dns suffix>` (what CloudTrail records as
/// `requestParameters.Host` for a request through an access point): name, account and Region.
pub fn access_point_host(host: &str) -> Option<(&str, &str, &str)> {
    let (label, rest) = host.split_once(".s3-accesspoint.")?;
    let region = Partition::ALL
        .iter()
        .find_map(|p| rest.strip_suffix(p.dns_suffix())?.strip_suffix('.'))
        .map(|r| r.strip_prefix("dualstack.").unwrap_or(r))?;
    let (name, account) = label.rsplit_once('-')?;
    (!name.is_empty() && is_account_id(account) && !region.is_empty() && !region.contains('.'))
        .then_some((name, account, region))
}

/// A KMS key ARN split into Region, account and key id; `None` for anything else (alias
/// ARNs included).
pub fn kms_key_arn(text: &str) -> Option<(&str, &str, &str)> {
    let arn = Arn::parse(text)?;
    let key_id = arn.resource.strip_prefix("key/")?;
    (arn.service == "kms"
        && !arn.region.is_empty()
        && is_account_id(arn.account)
        && !key_id.is_empty())
    .then_some((arn.region, arn.account, key_id))
}

/// `arn:<partition>:kms:<region>:<account>:key/<id>`.
pub fn key_arn(partition: Partition, region: &str, account: &str, key_id: &str) -> String {
    format!("arn:{partition}:kms:{region}:{account}:key/{key_id}")
}

/// `arn:<partition>:iam::<account>:root`: the account as a principal.
pub fn account_root(partition: Partition, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:root")
}

/// `arn:<partition>:iam::<account>:role/<path+name>`.
pub fn role_arn(partition: Partition, account: &str, path_and_name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{path_and_name}")
}

/// `arn:<partition>:iam::<account>:<kind>/<path+name>` for IAM identities (`user`, `role`,
/// `group`, `policy`).
pub fn iam_arn(partition: Partition, account: &str, kind: &str, path_and_name: &str) -> String {
    format!("arn:{partition}:iam::{account}:{kind}/{path_and_name}")
}

/// `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`.
pub fn session_arn(partition: Partition, account: &str, role_name: &str, session: &str) -> String {
    format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}")
}

/// The role behind a session ARN: `arn:aws:sts::ACCT:assumed-role/NAME/SESSION` →
/// `arn:aws:iam::ACCT:role/NAME` (without the role path, which a session ARN does not carry).
pub fn role_of_session(session_arn: &str) -> Option<String> {
    let a = Arn::parse(session_arn)?;
    if a.service != "sts" {
        return None;
    }
    let rest = a.resource.strip_prefix("assumed-role/")?;
    let name = rest.split('/').next().filter(|n| !n.is_empty())?;
    Some(format!(
        "arn:{}:iam::{}:role/{name}",
        a.partition, a.account
    ))
}

/// Whether `arn` is a CloudFront origin access identity, which S3 sees as the IAM user
/// `arn:<partition>:iam::cloudfront:user/CloudFront Origin Access Identity <id>`
/// (<https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html>).
pub fn is_cloudfront_oai(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|a| {
        a.service == "iam"
            && a.account == "cloudfront"
            && a.resource
                .starts_with("user/CloudFront Origin Access Identity")
    })
}

/// The path and name of a role ARN (`arn:<partition>:iam::<account>:role/<path>/<name>`):
/// `("aws-service-role/config.<suffix>/", "AWSServiceRoleForConfig")`.
pub fn role_path_and_name(arn: &str) -> Option<(&str, &str)> {
    let a = Arn::parse(arn)?;
    if a.service != "iam" {
        return None;
    }
    let rest = a.resource.strip_prefix("role/")?;
    Some(match rest.rfind('/') {
        Some(i) => (
            rest.get(..=i).unwrap_or_default(),
            rest.get(i + 1..).unwrap_or_default(),
        ),
        None => ("", rest),
    })
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
        assert_eq!(
            parse_s3_arn("arn:aws-cn:s3:::b/k"),
            Some((Partition::AwsCn, "b", Some("k")))
        );
        assert_eq!(parse_s3_arn("arn:aws-iso:s3:::b/k"), None);
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333"));
    }

    #[test]
    fn access_point_arns_aliases_and_hosts() {
        let (ap, key) =
            AccessPointRef::parse("arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap")
                .expect("access point ARN");
        assert_eq!(key, None);
        assert_eq!(ap.name, "reports-ap");
        assert_eq!(ap.account, "111122223333");
        assert_eq!(ap.region, "us-west-2");
        assert_eq!(
            ap.arn(),
            "arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap"
        );
        assert_eq!(
            ap.object_arn(Some("reports/q1.csv")),
            "arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap/object/reports/q1.csv"
        );
        let (ap, key) = AccessPointRef::parse(
            "arn:aws-cn:s3:cn-north-1:111122223333:accesspoint/ap/object/a/b.csv",
        )
        .expect("object through an access point");
        assert_eq!(ap.partition, Partition::AwsCn);
        assert_eq!(key, Some("a/b.csv"));
        // Not access points: a bucket, a Multi-Region Access Point, other suffixes.
        for text in [
            "arn:aws:s3:::doc-example-bucket/k",
            "arn:aws:s3::111122223333:accesspoint/mfzwi23gnjvgw.mrap",
            "arn:aws:s3:us-west-2:111122223333:accesspoint/ap/k",
            "arn:aws:s3:us-west-2:111122223333:accesspoint/",
            "arn:aws:s3:us-west-2:111122223333:accesspoint/ap/object/",
            "arn:aws:s3-outposts:us-west-2:111122223333:outpost/op/accesspoint/ap",
        ] {
            assert_eq!(AccessPointRef::parse(text), None, "{text}");
        }
        assert!(is_access_point_alias(
            "reports-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias"
        ));
        assert!(!is_access_point_alias("doc-example-bucket"));
        assert!(!is_access_point_alias("-s3alias"));
        assert_eq!(
            access_point_host("reports-ap-111122223333.s3-accesspoint.us-west-2.amazonaws.com"),
            Some(("reports-ap", "111122223333", "us-west-2"))
        );
        assert_eq!(
            access_point_host(
                "ap-111122223333.s3-accesspoint.dualstack.cn-north-1.amazonaws.com.cn"
            ),
            Some(("ap", "111122223333", "cn-north-1"))
        );
        assert_eq!(
            access_point_host("doc-example-bucket.s3.us-west-2.amazonaws.com"),
            None
        );
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("cn-northwest-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("us-gov-west-1"), Partition::AwsUsGov);
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
        assert_eq!(Partition::of_region(""), Partition::Aws);
        for p in Partition::ALL {
            assert_eq!(Partition::parse(p.as_str()), Some(p));
            assert_eq!(Partition::of_region(p.example_region()), p);
        }
    }

    #[test]
    fn names_follow_the_partition() {
        let b = BucketRef::new(Partition::AwsCn, "data");
        assert_eq!(b.arn(), "arn:aws-cn:s3:::data");
        assert_eq!(b.object("a/b.csv").arn(), "arn:aws-cn:s3:::data/a/b.csv");
        assert_eq!(
            ObjectRef {
                bucket: BucketRef::new(Partition::AwsUsGov, "g"),
                key: None
            }
            .arn(),
            "arn:aws-us-gov:s3:::g/*"
        );
        assert_eq!(
            Partition::AwsCn.service_endpoint("s3", "cn-north-1"),
            "s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            Partition::AwsUsGov.service_endpoint("s3", "us-gov-west-1"),
            "s3.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            ec2_endpoint("us-west-2"),
            "https://ec2.us-west-2.amazonaws.com/"
        );
        assert_eq!(
            ec2_endpoint("cn-northwest-1"),
            "https://ec2.cn-northwest-1.amazonaws.com.cn/"
        );
        assert_eq!(
            ec2_endpoint("us-gov-east-1"),
            "https://ec2.us-gov-east-1.amazonaws.com/"
        );
        assert_eq!(
            account_root(Partition::AwsUsGov, "111122223333"),
            "arn:aws-us-gov:iam::111122223333:root"
        );
        assert_eq!(
            session_arn(Partition::AwsCn, "111122223333", "r", "s"),
            "arn:aws-cn:sts::111122223333:assumed-role/r/s"
        );
        assert_eq!(
            role_of_session("arn:aws-cn:sts::111122223333:assumed-role/r/s").as_deref(),
            Some("arn:aws-cn:iam::111122223333:role/r")
        );
        assert!(is_service_name("s3.amazonaws.com", "s3"));
        assert!(is_service_name("s3.amazonaws.com.cn", "s3"));
        assert!(!is_service_name("s3.example.com", "s3"));
        assert!(!is_service_name("kms.amazonaws.com", "s3"));
        assert!(is_cloudfront_oai(
            "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2QWRUHEXAMPLE"
        ));
        assert!(!is_cloudfront_oai(
            "arn:aws:iam::111122223333:user/CloudFront"
        ));
        assert_eq!(
            role_path_and_name("arn:aws:iam::111122223333:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"),
            Some(("aws-service-role/config.amazonaws.com/", "AWSServiceRoleForConfig"))
        );
        assert_eq!(
            role_path_and_name("arn:aws:iam::111122223333:role/reader"),
            Some(("", "reader"))
        );
    }
}
