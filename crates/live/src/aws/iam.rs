//! IAM reads for the calling principal: the role or user, its inline and attached managed
//! policies, its groups, and the default versions of managed policies. IAM returns policy
//! documents URL-encoded; they are decoded here, so nothing downstream sees `%7B`.

use aws_sdk_iam::types::PolicyScopeType;

use super::{none_if, read_error, AwsReader};
use crate::ports::{
    AttachedPolicies, IdentityInfo, IdentityKind, IdentityReads, PolicyVersionRef, Read,
};

/// Lists are read with the largest page IAM serves; further pages follow the marker.
const PAGE: i32 = 1000;

/// A document as IAM returned it, percent-decoded when it is URL-encoded (RFC 3986: `+` is
/// not a space).
pub(super) fn decoded(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        return text.to_owned();
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn tags(list: &[aws_sdk_iam::types::Tag]) -> Vec<(String, String)> {
    list.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

impl IdentityReads for AwsReader {
    async fn identity(&self, kind: IdentityKind, name: &str) -> Read<Option<IdentityInfo>> {
        let iam = self.iam();
        let got = match kind {
            IdentityKind::Role => iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .map_err(read_error)
                .map(|o| {
                    o.role().map(|r| IdentityInfo {
                        arn: r.arn().to_owned(),
                        path: r.path().to_owned(),
                        id: Some(r.role_id().to_owned()),
                        permissions_boundary: r
                            .permissions_boundary()
                            .and_then(|b| b.permissions_boundary_arn())
                            .map(str::to_owned),
                        tags: tags(r.tags()),
                        trust_policy: r.assume_role_policy_document().map(decoded),
                    })
                }),
            IdentityKind::User => iam
                .get_user()
                .user_name(name)
                .send()
                .await
                .map_err(read_error)
                .map(|o| {
                    o.user().map(|u| IdentityInfo {
                        arn: u.arn().to_owned(),
                        path: u.path().to_owned(),
                        id: Some(u.user_id().to_owned()),
                        permissions_boundary: u
                            .permissions_boundary()
                            .and_then(|b| b.permissions_boundary_arn())
                            .map(str::to_owned),
                        tags: tags(u.tags()),
                        trust_policy: None,
                    })
                }),
            IdentityKind::Group => iam
                .get_group()
                .group_name(name)
                .send()
                .await
                .map_err(read_error)
                .map(|o| {
                    o.group().map(|g| IdentityInfo {
                        arn: g.arn().to_owned(),
                        path: g.path().to_owned(),
                        id: Some(g.group_id().to_owned()),
                        permissions_boundary: None,
                        tags: Vec::new(),
                        trust_policy: None,
                    })
                }),
        };
        Ok(none_if(got, &["NoSuchEntity"])?.flatten())
    }

    async fn inline_policy_names(&self, kind: IdentityKind, name: &str) -> Read<Vec<String>> {
        let iam = self.iam();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (names, next) = match kind {
                IdentityKind::Role => {
                    let o = iam
                        .list_role_policies()
                        .role_name(name)
                        .max_items(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(read_error)?;
                    let next = o.is_truncated().then(|| o.marker().map(str::to_owned));
                    (o.policy_names().to_vec(), next.flatten())
                }
                IdentityKind::User => {
                    let o = iam
                        .list_user_policies()
                        .user_name(name)
                        .max_items(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(read_error)?;
                    let next = o.is_truncated().then(|| o.marker().map(str::to_owned));
                    (o.policy_names().to_vec(), next.flatten())
                }
                IdentityKind::Group => {
                    let o = iam
                        .list_group_policies()
                        .group_name(name)
                        .max_items(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(read_error)?;
                    let next = o.is_truncated().then(|| o.marker().map(str::to_owned));
                    (o.policy_names().to_vec(), next.flatten())
                }
            };
            out.extend(names);
            match next {
                Some(m) => marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    async fn inline_policy(&self, kind: IdentityKind, name: &str, policy: &str) -> Read<String> {
        let iam = self.iam();
        let doc = match kind {
            IdentityKind::Role => iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(read_error)?
                .policy_document()
                .to_owned(),
            IdentityKind::User => iam
                .get_user_policy()
                .user_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(read_error)?
                .policy_document()
                .to_owned(),
            IdentityKind::Group => iam
                .get_group_policy()
                .group_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(read_error)?
                .policy_document()
                .to_owned(),
        };
        Ok(decoded(&doc))
    }

    async fn attached_policies(&self, kind: IdentityKind, name: &str) -> Read<Vec<String>> {
        let iam = self.iam();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (list, next) = match kind {
                IdentityKind::Role => {
                    let o = iam
                        .list_attached_role_policies()
                        .role_name(name)
                        .max_items(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(read_error)?;
                    let next = o.is_truncated().then(|| o.marker().map(str::to_owned));
                    (o.attached_policies().to_vec(), next.flatten())
                }
                IdentityKind::User => {
                    let o = iam
                        .list_attached_user_policies()
                        .user_name(name)
                        .max_items(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(read_error)?;
                    let next = o.is_truncated().then(|| o.marker().map(str::to_owned));
                    (o.attached_policies().to_vec(), next.flatten())
                }
                IdentityKind::Group => {
                    let o = iam
                        .list_attached_group_policies()
                        .group_name(name)
                        .max_items(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(read_error)?;
                    let next = o.is_truncated().then(|| o.marker().map(str::to_owned));
                    (o.attached_policies().to_vec(), next.flatten())
                }
            };
            out.extend(
                list.iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned)),
            );
            match next {
                Some(m) => marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    async fn groups_for_user(&self, user: &str) -> Read<Vec<String>> {
        let o = self
            .iam()
            .list_groups_for_user()
            .user_name(user)
            .max_items(PAGE)
            .send()
            .await
            .map_err(read_error)?;
        Ok(o.groups()
            .iter()
            .map(|g| g.group_name().to_owned())
            .collect())
    }

    async fn attached_policy_versions(&self) -> Read<AttachedPolicies> {
        // One page: if an account has more attached policies than that, the rest are looked
        // up one by one with GetPolicy.
        let o = self
            .iam()
            .list_policies()
            .only_attached(true)
            .scope(PolicyScopeType::All)
            .max_items(PAGE)
            .send()
            .await
            .map_err(read_error)?;
        let by_arn = o
            .policies()
            .iter()
            .filter_map(|p| {
                Some((
                    p.arn()?.to_owned(),
                    PolicyVersionRef {
                        name: p.policy_name().map(str::to_owned),
                        default_version: p.default_version_id()?.to_owned(),
                    },
                ))
            })
            .collect();
        Ok(AttachedPolicies {
            by_arn,
            complete: !o.is_truncated(),
        })
    }

    async fn policy(&self, arn: &str) -> Read<PolicyVersionRef> {
        let o = self
            .iam()
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(read_error)?;
        let p = o.policy();
        Ok(PolicyVersionRef {
            name: p.and_then(|p| p.policy_name()).map(str::to_owned),
            default_version: p
                .and_then(|p| p.default_version_id())
                .unwrap_or("v1")
                .to_owned(),
        })
    }

    async fn policy_version(&self, arn: &str, version: &str) -> Read<String> {
        let o = self
            .iam()
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(read_error)?;
        Ok(decoded(
            o.policy_version()
                .and_then(|v| v.document())
                .unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::decoded;

    #[test]
    fn url_encoded_documents_are_decoded_and_plain_ones_kept() {
        assert_eq!(
            decoded("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(decoded(r#"{"a": "50%"}"#), r#"{"a": "50%"}"#);
        assert_eq!(decoded("%7B%22a%22%3A%22x+y%22%7D"), r#"{"a":"x+y"}"#);
    }
}
