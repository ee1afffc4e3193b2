//! `/stats/summary` JSON → `metrics_core::kubelet::summary::decode`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use metrics_core::kubelet::summary;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = summary::decode(data) {
        common::check_batch(&batch);
    }
});
