//! The Lambda entry point: configuration and clients once per container, then one
//! [`handle`] per event. Logs are JSON lines (`tracing`), one per diagnosis.

use std::time::Instant;

use auditor_live::aws::{load_sdk_config, AwsAccounts, SnsPublisher};
use auditor_live::cache::Cache;
use auditor_live::collect::Collector;
use auditor_live::config::Config;
use auditor_live::handler::{handle, LiveError, Summary};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("S3KA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
    let started = Instant::now();
    // A bad setting stops the container here, with the variable's name, before any event.
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = load_sdk_config(&config.sdk).await;
    let accounts = AwsAccounts::new(
        sdk.clone(),
        config.role.clone(),
        config.sdk.endpoint_url.is_some(),
    )
    .with_org_access(config.org_access.clone());
    let collector = Collector::new(accounts, Cache::new(config.cache_ttl), config.options);
    let publisher = SnsPublisher::new(&sdk, &config.topic_arn);
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "initialized"
    );
    let (collector, publisher) = (&collector, &publisher);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        invoke(collector, publisher, event).await
    }))
    .await
}

async fn invoke(
    collector: &Collector<AwsAccounts>,
    publisher: &SnsPublisher,
    event: LambdaEvent<Value>,
) -> Result<Summary, Diagnostic> {
    // The function's own account needs no role session: read it from the function ARN.
    if let Some(account) = event.context.invoked_function_arn.split(':').nth(4) {
        if account.len() == 12 {
            collector.accounts().set_home_account(account);
        }
    }
    // Typed view of the envelope, for the log line; the record itself is read by `auditor`.
    if let Ok(envelope) = serde_json::from_value::<EventBridgeEvent<Value>>(event.payload.clone()) {
        tracing::debug!(id = envelope.id.as_deref(), source = %envelope.source, detail_type = %envelope.detail_type, "event received");
    }
    handle(collector, publisher, &event.payload)
        .await
        .map_err(|e: LiveError| {
            tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
            Diagnostic::from(e)
        })
}
