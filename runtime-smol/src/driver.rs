//! The engine task: runs the [`EngineDriver`]'s commands as tasks and feeds their
//! reports back, sleeping until its timer in between.

use std::collections::HashMap;
use std::sync::Arc;

use metrics_core::driver::{Command, EngineDriver, REPORTS_PER_WAKEUP, Report, RequestKey};
use smol::{Task, channel, future};

use crate::conn::{self, Connector, Stream};
use crate::{Draining, now, sleep_until, wall};

/// Reports queued from request tasks before they wait (bounds memory on a fast stream).
const REPORT_QUEUE: usize = 256;

/// What the engine task wakes up for.
enum Wake {
    Report(Report<Stream>),
    Timer,
    Draining,
}

/// Drives the engine until cancelled; dropping it cancels every request task.
pub(crate) async fn run_engine(
    mut driver: EngineDriver<Stream>,
    connector: Arc<Connector>,
    draining: Draining,
) {
    let (reports, inbox) = channel::bounded(REPORT_QUEUE);
    let mut running: HashMap<RequestKey, Task<()>> = HashMap::new();
    let mut watching = true;
    loop {
        let (now, wall) = (now(), wall());
        driver.handle_timeout(now, wall);
        while let Some(command) = driver.poll_command(now, wall) {
            match command {
                Command::Start {
                    exchange,
                    connection,
                } => {
                    let key = exchange.key();
                    let task = conn::exchange(
                        exchange,
                        connection,
                        Arc::clone(&connector),
                        reports.clone(),
                    );
                    if let Some(earlier) = running.insert(key, smol::spawn(task)) {
                        earlier.detach();
                    }
                }
                // Dropping a task handle cancels the task.
                Command::Abort(key) => drop(running.remove(&key)),
            }
        }
        let deadline = driver.poll_timeout();
        let drain = async {
            if watching {
                draining.wait().await;
                Wake::Draining
            } else {
                future::pending().await
            }
        };
        let report = async { inbox.recv().await.map_or(Wake::Timer, Wake::Report) };
        let timer = async {
            sleep_until(deadline).await;
            Wake::Timer
        };
        // A connection queued a review: send it now rather than at the next timer.
        let review = async {
            std::future::poll_fn(|cx| driver.poll_ready(cx)).await;
            Wake::Timer
        };
        // `or` is biased to its first future: a busy stream of reports must not keep
        // the engine from learning about the shutdown.
        let wake = future::or(drain, future::or(report, future::or(timer, review))).await;
        match wake {
            Wake::Report(report) => {
                // Take what is queued, up to a bound, before running the engine again.
                let mut report = Some(report);
                let mut handled = 0;
                while let Some(current) = report.take() {
                    if let Report::Finished { key, .. } = &current
                        && let Some(task) = running.remove(key)
                    {
                        task.detach();
                    }
                    driver.handle_report(crate::now(), current);
                    handled += 1;
                    if handled < REPORTS_PER_WAKEUP {
                        report = inbox.try_recv().ok();
                    }
                }
            }
            Wake::Timer => {}
            Wake::Draining => {
                watching = false;
                driver.begin_shutdown();
            }
        }
    }
}
