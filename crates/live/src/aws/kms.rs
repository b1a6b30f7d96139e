//! KMS reads: key metadata, the key policy, grants and aliases.

use serde_json::{json, Map, Value};

use super::{none_if, read_error, AwsReader};
use crate::ports::{KeyInfo, KeyReads, Read};

impl KeyReads for AwsReader {
    async fn describe_key(&self, region: &str, key: &str) -> Read<Option<KeyInfo>> {
        let got = self
            .kms(region)
            .describe_key()
            .key_id(key)
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["NotFoundException"])? else {
            return Ok(None);
        };
        Ok(out.key_metadata().map(|m| KeyInfo {
            arn: m.arn().unwrap_or_default().to_owned(),
            key_id: m.key_id().to_owned(),
            key_manager: m
                .key_manager()
                .map(|k| k.as_str().to_owned())
                .unwrap_or_else(|| "CUSTOMER".to_owned()),
            key_state: m
                .key_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| if m.enabled() { "Enabled" } else { "Disabled" }.to_owned()),
            multi_region: m.multi_region().unwrap_or(false),
        }))
    }

    async fn key_policy(&self, region: &str, key: &str) -> Read<String> {
        let out = self
            .kms(region)
            .get_key_policy()
            .key_id(key)
            .policy_name("default")
            .send()
            .await
            .map_err(read_error)?;
        Ok(out.policy().unwrap_or_default().to_owned())
    }

    async fn grants(&self, region: &str, key: &str) -> Read<Vec<Value>> {
        let client = self.kms(region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = client
                .list_grants()
                .key_id(key)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(read_error)?;
            for g in page.grants() {
                let mut v = Map::new();
                let mut put = |k: &str, val: Option<&str>| {
                    if let Some(val) = val {
                        v.insert(k.to_owned(), json!(val));
                    }
                };
                put("KeyId", g.key_id());
                put("GrantId", g.grant_id());
                put("Name", g.name());
                put("GranteePrincipal", g.grantee_principal());
                put("RetiringPrincipal", g.retiring_principal());
                put("IssuingAccount", g.issuing_account());
                let ops: Vec<&str> = g.operations().iter().map(|o| o.as_str()).collect();
                v.insert("Operations".into(), json!(ops));
                if let Some(c) = g.constraints() {
                    let mut cv = Map::new();
                    if let Some(s) = c.encryption_context_subset() {
                        cv.insert("EncryptionContextSubset".into(), json!(s));
                    }
                    if let Some(e) = c.encryption_context_equals() {
                        cv.insert("EncryptionContextEquals".into(), json!(e));
                    }
                    v.insert("Constraints".into(), Value::Object(cv));
                }
                out.push(Value::Object(v));
            }
            match page.next_marker() {
                Some(m) if page.truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn aliases(&self, region: &str, key: &str) -> Read<Vec<String>> {
        let out = self
            .kms(region)
            .list_aliases()
            .key_id(key)
            .send()
            .await
            .map_err(read_error)?;
        Ok(out
            .aliases()
            .iter()
            .filter_map(|a| a.alias_name().map(str::to_owned))
            .collect())
    }
}
