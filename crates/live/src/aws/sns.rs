//! Publishing notifications to an SNS topic.
//!
//! The publish leaves `MessageStructure` unset (String): AWS delivers message attributes only
//! with the String structure (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html>),
//! and the subscriptions' filter policies need them. The body is the JSON document
//! `auditor::report::sns` builds, the same for every protocol.

use auditor::report::sns::Notification;
use aws_config::{Region, SdkConfig};
use aws_sdk_sns::types::MessageAttributeValue;

use super::read_error;
use crate::ports::{Publisher, ReadError};

/// Publishes to one topic, in the topic's Region.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// A publisher to `topic_arn` (`arn:<partition>:sns:<region>:<account>:<name>`) with the
    /// function's own credentials.
    pub fn new(config: &SdkConfig, topic_arn: &str) -> SnsPublisher {
        let mut builder = aws_sdk_sns::config::Builder::from(config);
        if let Some(region) = topic_arn.split(':').nth(3).filter(|r| !r.is_empty()) {
            builder = builder.region(Region::new(region.to_owned()));
        }
        SnsPublisher {
            client: aws_sdk_sns::Client::from_conf(builder.build()),
            topic_arn: topic_arn.to_owned(),
        }
    }

    /// The topic.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

impl Publisher for SnsPublisher {
    async fn publish(&self, n: &Notification) -> Result<String, ReadError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&n.subject)
            .message(&n.message);
        for a in &n.attributes {
            let value = MessageAttributeValue::builder()
                .data_type(a.value.data_type())
                .string_value(a.value.string_value())
                .build()
                .map_err(|e| ReadError::Service {
                    code: "InvalidParameter".into(),
                    message: Some(format!("message attribute `{}`: {e}", a.name)),
                })?;
            req = req.message_attributes(a.name, value);
        }
        let out = req.send().await.map_err(read_error)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
