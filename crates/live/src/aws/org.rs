//! AWS Organizations: whether the account is in an organization, and which.

use super::{none_if, read_error, AwsReader};
use crate::ports::{OrgInfo, OrgReads, Read};

impl OrgReads for AwsReader {
    async fn organization(&self) -> Read<Option<OrgInfo>> {
        let got = self
            .org()
            .describe_organization()
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["AWSOrganizationsNotInUseException"])? else {
            return Ok(None);
        };
        Ok(out.organization().map(|o| OrgInfo {
            id: o.id().unwrap_or_default().to_owned(),
            management_account: o.master_account_id().unwrap_or_default().to_owned(),
        }))
    }
}
