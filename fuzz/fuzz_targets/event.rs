//! The event parser (auditor::event::parse_events): arbitrary bytes read as JSON, as the CLI
//! reads an event file, then parsed as CloudTrail records, an EventBridge envelope, a trail
//! log file or `lookup-events` output.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = auditor::event::parse_events(&v);
    }
});
