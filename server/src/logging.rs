//! Logging: `tracing` events to stderr as text or JSON lines (`--logging-format`), with
//! klog's `-v` verbosity mapped onto tracing levels:
//!
//! | `-v`  | most verbose level shown | upstream messages at that verbosity                |
//! |-------|--------------------------|----------------------------------------------------|
//! | 0, 1  | INFO                     | start-up, errors, `V(1)` "Scrape finished"          |
//! | 2, 3  | DEBUG                    | per-request and per-node detail                     |
//! | ≥ 4   | TRACE                    | `V(4)` failures of NotReady nodes, wire-level detail |
//!
//! Call sites that mirror an upstream `klog.V(n)` message at INFO can gate it with
//! [`v`]`(n)` (so `-v=1` shows "Scrape finished" at INFO like upstream, while `-v=0`
//! does not). WARN and ERROR are always shown.

use std::sync::atomic::{AtomicU32, Ordering};

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::flags::{LogFormat, LoggingOptions};

static VERBOSITY: AtomicU32 = AtomicU32::new(0);

/// The tracing level filter for a klog verbosity (see the module table).
pub fn level_for_verbosity(verbosity: u32) -> LevelFilter {
    match verbosity {
        0 | 1 => LevelFilter::INFO,
        2 | 3 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The verbosity set by [`init`] (0 before).
pub fn verbosity() -> u32 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// klog's `V(level).Enabled()`: true when `-v` is at least `level`.
pub fn v(level: u32) -> bool {
    verbosity() >= level
}

/// A subscriber for `options` writing to `writer` (tests pass a buffer; [`init`] passes
/// stderr). Text lines look like
/// `2025-06-10T09:40:27.860000Z  INFO metrics_server::x: Scrape finished nodes=3`;
/// JSON lines are one object each with `timestamp`, `level`, `target` and the event's
/// fields (`message` included) at the top level.
pub fn subscriber<W>(options: &LoggingOptions, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_max_level(level_for_verbosity(options.verbosity))
        .with_writer(writer);
    match options.format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Why [`init`] failed.
#[derive(Debug)]
pub struct LoggingError(String);

impl std::fmt::Display for LoggingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoggingError {}

/// Installs the global subscriber (stderr, as klog) and records the verbosity for [`v`].
/// Fails if a global subscriber is already installed.
pub fn init(options: &LoggingOptions) -> Result<(), LoggingError> {
    VERBOSITY.store(options.verbosity, Ordering::Relaxed);
    tracing::subscriber::set_global_default(subscriber(options, std::io::stderr))
        .map_err(|e| LoggingError(format!("unable to install the logger: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.0.lock() {
                Ok(mut v) => v.extend_from_slice(buf),
                Err(p) => p.into_inner().extend_from_slice(buf),
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            let bytes = match self.0.lock() {
                Ok(v) => v.clone(),
                Err(p) => p.into_inner().clone(),
            };
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    fn capture(options: LoggingOptions) -> String {
        let buf = Buffer::default();
        let sub = subscriber(&options, buf.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(nodes = 3, "Scrape finished");
            tracing::debug!("debug detail");
            tracing::trace!("trace detail");
            tracing::warn!("a warning");
        });
        buf.text()
    }

    #[test]
    fn verbosity_levels() {
        assert_eq!(level_for_verbosity(0), LevelFilter::INFO);
        assert_eq!(level_for_verbosity(1), LevelFilter::INFO);
        assert_eq!(level_for_verbosity(2), LevelFilter::DEBUG);
        assert_eq!(level_for_verbosity(3), LevelFilter::DEBUG);
        assert_eq!(level_for_verbosity(4), LevelFilter::TRACE);
        assert_eq!(level_for_verbosity(10), LevelFilter::TRACE);
    }

    #[test]
    fn text_output_respects_verbosity() {
        let out = capture(LoggingOptions {
            verbosity: 0,
            format: LogFormat::Text,
        });
        assert!(out.contains("Scrape finished"), "{out}");
        assert!(out.contains("nodes=3"), "{out}");
        assert!(out.contains("a warning"), "{out}");
        assert!(!out.contains("debug detail"), "{out}");
        let out = capture(LoggingOptions {
            verbosity: 2,
            format: LogFormat::Text,
        });
        assert!(out.contains("debug detail"), "{out}");
        assert!(!out.contains("trace detail"), "{out}");
        let out = capture(LoggingOptions {
            verbosity: 4,
            format: LogFormat::Text,
        });
        assert!(out.contains("trace detail"), "{out}");
    }

    #[test]
    fn json_output_is_one_object_per_line() {
        let out = capture(LoggingOptions {
            verbosity: 0,
            format: LogFormat::Json,
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            assert!(v.get("timestamp").is_some(), "{line}");
            assert!(v.get("level").is_some(), "{line}");
            assert!(v.get("message").is_some(), "{line}");
        }
        let first: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON line");
        assert_eq!(first["message"], "Scrape finished");
        assert_eq!(first["nodes"], 3);
        assert_eq!(first["level"], "INFO");
    }
}
