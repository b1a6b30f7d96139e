//! The sweep queue: `SendMessageBatch`, ten entries at most per call
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>).

use aws_config::SdkConfig;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::read_error;
use crate::ports::{Queue, Read, ReadError};

/// One queue, with the function's own credentials.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(config: &SdkConfig, url: &str) -> SqsQueue {
        SqsQueue {
            client: aws_sdk_sqs::Client::new(config),
            url: url.to_owned(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Queue for SqsQueue {
    async fn send_batch(&self, entries: &[(String, String)]) -> Read<Vec<String>> {
        let mut list = Vec::with_capacity(entries.len());
        for (id, body) in entries {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(id)
                .message_body(body)
                .build()
                .map_err(|e| ReadError::Service {
                    code: "InvalidEntry".into(),
                    message: Some(e.to_string()),
                })?;
            list.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(list))
            .send()
            .await
            .map_err(read_error)?;
        Ok(out.failed().iter().map(|f| f.id().to_owned()).collect())
    }
}
