//! Kubeconfig YAML/JSON → `metrics_server::kubeconfig::Kubeconfig::parse`, then
//! `resolve` for the current context and for every named one (resolving reads no file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_server::kubeconfig::Kubeconfig;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Kubeconfig::parse(text) else {
        return;
    };
    if let Ok(rest) = config.resolve(None, Some(Path::new("/etc/kubernetes"))) {
        let _ = rest.server.authority();
        let _ = rest.server.ip();
    }
    for ctx in config.contexts.iter().take(16) {
        let _ = config.resolve(Some(&ctx.name), None);
    }
});
