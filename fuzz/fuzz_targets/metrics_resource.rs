//! `/metrics/resource` Prometheus text → `metrics_core::kubelet::resource::decode`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use metrics_core::Timestamp;
use metrics_core::kubelet::resource;

fuzz_target!(|data: &[u8]| {
    // The time the scrape was sent: stamps samples that carry no timestamp.
    let sent = Timestamp::from_unix_secs(1_749_549_600);
    if let Ok(batch) = resource::decode(data, sent) {
        common::check_batch(&batch);
    }
});
