//! Integration tests against an AWS-compatible server (moto), started by `scripts/test` and
//! found through `S3KA_TEST_ENDPOINT`. Outside CI, without the server, they say so and skip;
//! with `CI` set, a missing server fails them.
//!
//! * `kc`: the knowledge-center scenario built in two accounts, once per single cause; the
//!   live diagnosis must equal the offline diagnosis of the snapshot it collected, and the
//!   published message must carry the verdict, codes and attributes.
//! * `change`: change events against a warm container: the cached state they touch is
//!   dropped, so the next diagnosis reads the new state; failed and unrelated events do nothing.
//! * `impact`: policy-change impact — per change family, the change applied on the server,
//!   its event delivered, and the broken or fixed path read back from the topic; the state
//!   store's race.
//! * `impact_families`: the other change families (default encryption, bucket policy deletion,
//!   ownership/ACL/Block Public Access, aliases, key deletion, IAM groups, policy versions,
//!   boundaries, role deletion, SCPs on an OU and the root, an RCP) and a path opened.
//! * `sns`: the publish itself — what subscribers receive, and which filter policies (on
//!   attributes, on the body) it satisfies. These fail without the server.
//! * `noise`: noise control with its state in DynamoDB shared by two handler instances:
//!   dedup, the in-memory fallback, resolution, the rate limit's summary.
//! * `runtime_api`: the compiled Lambda binary driven through the Lambda Runtime API
//!   (cargo-lambda's emulator).
//! * `faults` (with the fault proxy of `proxy`): persistent throttling, round trips and
//!   connections seen from outside, 20% faults over 240 events.
//! * `load`: the load benchmark (ignored; run on demand).
//! * `layers`: bucket and object ACLs, and the organization's SCPs and RCPs read through a
//!   role in the management account (with what the server cannot emulate).
//! * `vpce`: the VPC endpoint a record names, read with `ec2:DescribeVpcEndpoints` (the
//!   hand-written Query client) in its owner's account; its policy blamed and fixed, an unknown
//!   endpoint stated as a gap.
//! * `measure`: the numbers of docs/live-measurements.md (ignored; run on demand).
//! * `sweep` (with the proxy counting the state store's reads): the organization sweep of
//!   twenty accounts through the real queue.
//! * `sweep_scale`: the calls per account of the organization sweep, counted at the proxy,
//!   for docs/scaling.md (ignored; run on demand).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly when the test server refuses its setup"
)]

mod access_point;
mod change;
mod faults;
mod impact;
mod impact_families;
mod kc;
mod layers;
mod load;
mod measure;
mod noise;
mod proxy;
mod runtime_api;
mod sns;
mod support;
mod sweep;
mod sweep_scale;
mod vpce;
