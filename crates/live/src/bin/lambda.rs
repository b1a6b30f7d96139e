//! The Lambda entry point: configuration and clients once per container. The organization
//! sweep's schedule and queue events go to [`auditor_live::sweep`]; every other event to one
//! [`handle_noisy`](auditor_live::handler::noise::handle_noisy) per event (noise control around
//! [`auditor_live::handler::handle`]), followed, when a state bucket is configured, by the
//! impact of its change records ([`assess_changes`]). Logs are JSON lines (`tracing`), one per
//! diagnosis.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use auditor_live::aws::{
    load_sdk_config, AwsAccounts, DynamoStore, S3StateStore, SnsPublisher, SqsQueue,
};
use auditor_live::cache::Cache;
use auditor_live::collect::Collector;
use auditor_live::config::Config;
use auditor_live::handler::impact::{assess_changes, ChangeImpact};
use auditor_live::handler::noise::{handle_noisy, Noise, NoiseConfig, NoisySummary};
use auditor_live::handler::LiveError;
use auditor_live::noise_store::{MemoryStore, NoiseStore};
use auditor_live::sweep::{self, SweepConfig, Worker};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

/// What one invocation returns: the noise-controlled handler's summary, and the impact of the
/// event's change records (empty without a state bucket).
#[derive(Debug, Serialize)]
struct Invocation {
    #[serde(flatten)]
    handled: NoisySummary,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    impacts: Vec<ChangeImpact>,
}

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
    let noise_config = NoiseConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let store = config
        .state_bucket
        .as_deref()
        .map(|b| S3StateStore::new(&sdk, b, config.sdk.endpoint_url.is_some()));
    let queue = config
        .sweep
        .queue_url
        .as_deref()
        .map(|q| SqsQueue::new(&sdk, q));
    let region = config
        .sdk
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_owned());
    let sweep = Sweep {
        queue: queue.as_ref(),
        config: &config.sweep,
        region: &region,
    };
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        table = noise_config.table.as_deref(),
        state_bucket = config.state_bucket.as_deref(),
        "initialized"
    );
    let (collector, publisher, store) = (&collector, &publisher, store.as_ref());
    // With a table, dedup holds across containers; without one, per container (docs/live.md).
    match noise_config.table.clone() {
        Some(table) => {
            let noise = Noise::new(
                noise_config,
                DynamoStore::new(&sdk, &table),
                &config.topic_arn,
                config.cache_ttl,
            );
            let noise = &noise;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                invoke(collector, publisher, noise, store, sweep, event).await
            }))
            .await
        }
        None => {
            tracing::warn!(
                "S3KA_TABLE_NAME is not set: dedup, rate limit and open problems are per container"
            );
            let noise = Noise::new(
                noise_config,
                MemoryStore::new(),
                &config.topic_arn,
                config.cache_ttl,
            );
            let noise = &noise;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                invoke(collector, publisher, noise, store, sweep, event).await
            }))
            .await
        }
    }
}

/// What the organization sweep uses beside the collector, publisher and state store.
#[derive(Clone, Copy)]
struct Sweep<'a> {
    queue: Option<&'a SqsQueue>,
    config: &'a SweepConfig,
    region: &'a str,
}

fn sweep_failed(error_type: &str, message: String) -> Diagnostic {
    tracing::error!(error_type, error = %message, "invocation failed");
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: message,
    }
}

/// The organization sweep: a schedule event plans it, queue batches run it; `None` for any
/// other event.
async fn sweep_invoke(
    collector: &Collector<AwsAccounts>,
    publisher: &SnsPublisher,
    store: Option<&S3StateStore>,
    sweep: Sweep<'_>,
    payload: &Value,
) -> Option<Result<Value, Diagnostic>> {
    let start = sweep::sweep_start(payload);
    if start.is_none() && !sweep::is_sqs(payload) {
        return None;
    }
    let (Some(store), Some(queue)) = (store, sweep.queue) else {
        return Some(Err(sweep_failed(
            "NotConfigured",
            "an organization sweep needs S3KA_STATE_BUCKET and S3KA_SWEEP_QUEUE_URL".into(),
        )));
    };
    if let Some((id, time)) = start {
        let home = collector
            .accounts()
            .home_account()
            .unwrap_or_default()
            .to_owned();
        let planned = sweep::plan(
            collector.accounts(),
            &home,
            queue,
            store,
            sweep.config,
            (&id, &time),
        )
        .await;
        return Some(
            planned
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
                .map_err(|e| sweep_failed("SweepPlanFailed", e.to_string())),
        );
    }
    let worker = Worker {
        collector,
        publisher,
        queue,
        store,
        config: sweep.config,
        region: sweep.region,
    };
    let out = worker.handle(payload).await;
    Some(Ok(serde_json::to_value(out).unwrap_or(Value::Null)))
}

async fn invoke<S: NoiseStore>(
    collector: &Collector<AwsAccounts>,
    publisher: &SnsPublisher,
    noise: &Noise<S>,
    store: Option<&S3StateStore>,
    sweep: Sweep<'_>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
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
    if let Some(done) = sweep_invoke(collector, publisher, store, sweep, &event.payload).await {
        return done;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let failed = |e: LiveError| {
        tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
        Diagnostic::from(e)
    };
    let handled = handle_noisy(collector, publisher, noise, &event.payload, now)
        .await
        .map_err(failed)?;
    // With a state bucket, change records are assessed for impact; without one they only
    // dropped the cached state they touch (inside `handle_noisy`).
    let impacts = match store {
        Some(store) if !handled.base.changes.is_empty() => {
            assess_changes(collector, publisher, store, &event.payload)
                .await
                .map_err(failed)?
        }
        _ => Vec::new(),
    };
    Ok(serde_json::to_value(Invocation { handled, impacts }).unwrap_or(Value::Null))
}
