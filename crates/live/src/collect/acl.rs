//! Canonical user ids, which ACLs name accounts by: the object-ownership check compares the
//! object's owner with the bucket owner's, and looks for a grant to the caller's.
//!
//! The bucket owner's comes free with `GetBucketAcl` (`Owner.ID`). The caller's costs a
//! `ListBuckets` in the caller's account, made only when the snapshot holds an object another
//! account owns with ACLs enabled, where without it a grant to the caller could not be told
//! from a grant to anyone else ([Amazon S3 ACL overview](https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html)).

use std::collections::BTreeSet;

use super::{answer, gap, Chain, Collector, Fragment, Reader};
use crate::keys;
use crate::meter::Meter;
use crate::ports::{Accounts, BucketReads};

impl<A: Accounts> Collector<A> {
    /// The canonical ids of the accounts the ownership check needs, from `fragments` and, if
    /// needed, from the caller's account through `caller`.
    pub(super) async fn canonical_ids(
        &self,
        caller: Option<Reader<'_, A::Reader>>,
        fragments: &[Fragment],
        meter: &Meter,
    ) -> Chain {
        let mut out = Vec::new();
        let mut known = BTreeSet::new();
        let mut foreign_object = false;
        for f in fragments {
            if let Fragment::Bucket {
                account, bucket, ..
            } = f
            {
                if let Some(id) = &bucket.acl_owner_id {
                    if known.insert(account.clone()) {
                        out.push(Fragment::Canonical {
                            account: account.clone(),
                            id: id.clone(),
                        });
                    }
                    foreign_object |= !bucket.acls_disabled()
                        && bucket
                            .objects
                            .values()
                            .any(|o| o.owner_id.as_ref().is_some_and(|oid| oid != id));
                }
            }
        }
        let Some(r) = caller.filter(|r| foreign_object && !known.contains(r.account)) else {
            return Ok(out);
        };
        let cache_key = keys::canonical(r.account);
        let id = match self.cached::<String>(&cache_key, meter) {
            Some(id) => id,
            None => {
                // After the object's ACL, which the bucket chain read one level below.
                meter.call("s3:ListBuckets", r.depth + 2);
                match answer(r.reader.canonical_id().await, r.account, "s3:ListBuckets")? {
                    Ok(id) => {
                        // A canonical id never changes.
                        self.cache.put(cache_key, id.clone());
                        id
                    }
                    Err(e) => {
                        out.push(gap(r.account, "s3:ListBuckets", None, &e));
                        return Ok(out);
                    }
                }
            }
        };
        out.push(Fragment::Canonical {
            account: r.account.to_owned(),
            id,
        });
        Ok(out)
    }
}
