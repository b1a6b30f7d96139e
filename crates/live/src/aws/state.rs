//! The state store in an S3 bucket of the auditor's own account, written with S3 conditional
//! writes: `If-None-Match: *` for a document's first write, `If-Match: <ETag>` afterwards,
//! so a writer that read an older version gets `412 Precondition Failed` instead of
//! overwriting a concurrent update
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).

use aws_config::SdkConfig;

use super::{none_if, read_error};
use crate::ports::{Read, ReadError, StateList, StateStore, Stored, WriteIf, Written};

/// The state bucket.
#[derive(Debug, Clone)]
pub struct S3StateStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3StateStore {
    /// A store in `bucket`, with the function's own credentials; `path_style` for an
    /// AWS-compatible test server.
    pub fn new(config: &SdkConfig, bucket: &str, path_style: bool) -> S3StateStore {
        let conf = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        S3StateStore {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: bucket.to_owned(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl StateStore for S3StateStore {
    async fn get(&self, name: &str) -> Read<Option<Stored>> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["NoSuchKey"])? else {
            return Ok(None);
        };
        let version = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ReadError::Transport {
                message: format!("reading s3://{}/{name}: {e}", self.bucket),
            })?
            .into_bytes();
        let body = String::from_utf8(bytes.to_vec()).map_err(|e| ReadError::Service {
            code: "InvalidState".into(),
            message: Some(format!("s3://{}/{name} is not UTF-8: {e}", self.bucket)),
        })?;
        Ok(Some(Stored { body, version }))
    }

    async fn put(&self, name: &str, body: &str, condition: &WriteIf) -> Read<Written> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(name)
            .content_type("application/json")
            .body(body.as_bytes().to_vec().into());
        req = match condition {
            WriteIf::Absent => req.if_none_match("*"),
            WriteIf::Version(etag) => req.if_match(etag),
        };
        match req.send().await.map_err(read_error) {
            Ok(out) => Ok(Written::Done(out.e_tag().unwrap_or_default().to_owned())),
            // 412: the condition failed. 409: a concurrent conditional write to the same key
            // is in progress (the S3 conditional-writes page says to retry).
            Err(ReadError::Service { code, .. } | ReadError::Denied { code, .. })
                if code == "PreconditionFailed" || code == "ConditionalRequestConflict" =>
            {
                Ok(Written::Conflict)
            }
            // `If-Match` on a document deleted since it was read: S3 answers 404.
            Err(ReadError::Service { code, .. })
                if code == "NoSuchKey" && matches!(condition, WriteIf::Version(_)) =>
            {
                Ok(Written::Conflict)
            }
            Err(e) => Err(e),
        }
    }
}

impl StateList for S3StateStore {
    async fn list(&self, prefix: &str) -> Read<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix);
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let page = req.send().await.map_err(read_error)?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }
}
