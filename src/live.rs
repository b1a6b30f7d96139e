//! `--live`: the Lambda's collection, run with the user's own AWS credentials (the standard
//! config chain, `--profile`, `--region`, `--endpoint-url`), so anything the function saw can
//! be reproduced and kept as a snapshot. Built only with the default `live` feature.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

/// How the CLI reaches AWS.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// A named profile of the AWS config files.
    #[arg(long)]
    pub profile: Option<String>,
    /// The Region for calls that need one (default: the profile's or `AWS_REGION`).
    #[arg(long)]
    pub region: Option<String>,
    /// One endpoint for every service (an AWS-compatible server); S3 then uses path-style URLs.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Read other accounts through this role (name or `path/name`), as the Lambda does;
    /// without it every account is read with your own credentials.
    #[arg(long)]
    pub assume_role: Option<String>,
    /// The ExternalId the role's trust policy requires.
    #[arg(long, requires = "assume_role")]
    pub external_id: Option<String>,
    /// Do not call HeadObject or GetObjectAcl (HeadObject needs s3:GetObject on the object).
    #[arg(long)]
    pub no_head_object: bool,
    /// Read the organization's SCPs and RCPs: `self` (your credentials are in the management
    /// account or a delegated administrator account) or the ARN of a role there to assume.
    #[arg(long, value_name = "self|ROLE_ARN")]
    pub org_access: Option<String>,
}

/// One denied record, collected and diagnosed.
pub struct Collected {
    /// The snapshot that reproduces the diagnosis offline.
    pub snapshot: Value,
    /// The diagnosis.
    pub diagnosis: auditor::diagnose::Diagnosis,
    /// `collected live: N AWS calls, D round trips deep`.
    pub cost: String,
}

/// Collects and diagnoses every denied record of `event`; also returns the skipped ones.
#[cfg(feature = "live")]
pub fn collect(args: &LiveArgs, event: &Value) -> Result<(Vec<Collected>, Vec<String>)> {
    use std::time::Duration;

    use anyhow::Context as _;
    use auditor_live::aws::{load_sdk_config, AwsAccounts, OrgAccess, RoleSpec, SdkSettings};
    use auditor_live::cache::Cache;
    use auditor_live::collect::{Collector, Options};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let org_access = match args.org_access.as_deref() {
        None => None,
        Some(v) => Some(OrgAccess::parse(v).with_context(|| {
            format!("--org-access `{v}`: expected `self` or a role ARN such as `arn:<partition>:iam::<account>:role/<name>`")
        })?),
    };
    runtime.block_on(async {
        let sdk = load_sdk_config(&SdkSettings {
            profile: args.profile.clone(),
            region: args.region.clone(),
            endpoint_url: args.endpoint_url.clone(),
            max_attempts: 3,
        })
        .await;
        let role = args.assume_role.as_ref().map(|name| RoleSpec {
            name: name.clone(),
            external_id: args.external_id.clone(),
            session_name: "s3-kms-auditor-cli".into(),
        });
        let assumes = role.is_some();
        let accounts =
            AwsAccounts::new(sdk, role, args.endpoint_url.is_some()).with_org_access(org_access);
        if assumes {
            // Your own account is read without the role.
            accounts
                .discover_home_account()
                .await
                .context("sts:GetCallerIdentity (which account are these credentials?)")?;
        }
        let collector = Collector::new(
            accounts,
            Cache::new(Duration::ZERO),
            Options {
                head_object: !args.no_head_object,
            },
        );
        let report = auditor_live::handler::diagnose_event(&collector, event).await?;
        let skipped = report
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{}: skipped: {}",
                    s.event_id.as_deref().unwrap_or("record"),
                    s.reason
                )
            })
            .collect();
        let collected = report
            .diagnosed
            .into_iter()
            .map(|d| Collected {
                cost: format!(
                    "collected live: {} AWS calls, {} round trips deep, {} ms",
                    d.stats.calls,
                    d.stats.depth,
                    d.duration.as_millis()
                ),
                snapshot: d.snapshot,
                diagnosis: d.diagnosis,
            })
            .collect();
        Ok((collected, skipped))
    })
}

/// Without the `live` feature there is nothing to collect with.
#[cfg(not(feature = "live"))]
pub fn collect(_: &LiveArgs, _: &Value) -> Result<(Vec<Collected>, Vec<String>)> {
    anyhow::bail!(
        "this build has no live collection: rebuild with the default `live` feature (cargo build without --no-default-features)"
    )
}

/// Where the `n`th snapshot of an event with several denied records goes: `OUT`, then
/// `OUT-2.json`, `OUT-3.json`...
pub fn numbered(out: &std::path::Path, n: usize) -> PathBuf {
    if n == 1 {
        return out.to_owned();
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    out.with_file_name(format!("{stem}-{n}.json"))
}
