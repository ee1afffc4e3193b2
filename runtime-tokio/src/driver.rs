//! The engine task: runs the [`EngineDriver`]'s commands as tasks and feeds their
//! reports back, sleeping until its timer in between.

use std::collections::HashMap;
use std::sync::Arc;

use metrics_core::driver::{Command, EngineDriver, REPORTS_PER_WAKEUP, Report, RequestKey};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::conn::{self, Connector, Stream};
use crate::{Phase, now, sleep_until, wall};

/// Reports queued from request tasks before they wait (bounds memory on a fast stream).
const REPORT_QUEUE: usize = 256;

/// Drives the engine until the phase becomes `Stopped`; aborts every request then.
pub(crate) async fn run_engine(
    mut driver: EngineDriver<Stream>,
    connector: Arc<Connector>,
    mut phase: watch::Receiver<Phase>,
) {
    let (reports, mut inbox) = mpsc::channel(REPORT_QUEUE);
    let mut tasks = JoinSet::new();
    let mut running: HashMap<RequestKey, AbortHandle> = HashMap::new();
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
                    running.insert(key, tasks.spawn(task));
                }
                Command::Abort(key) => {
                    if let Some(task) = running.remove(&key) {
                        task.abort();
                    }
                }
            }
        }
        tokio::select! {
            Some(report) = inbox.recv() => {
                // Take what is queued, up to a bound, before running the engine again.
                let mut report = Some(report);
                let mut handled = 0;
                while let Some(current) = report.take() {
                    if let Report::Finished { key, .. } = &current {
                        running.remove(key);
                    }
                    driver.handle_report(crate::now(), current);
                    handled += 1;
                    if handled < REPORTS_PER_WAKEUP {
                        report = inbox.try_recv().ok();
                    }
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = sleep_until(driver.poll_timeout()) => {}
            // A connection queued a review: send it now rather than at the next timer.
            () = std::future::poll_fn(|cx| driver.poll_ready(cx)) => {}
            changed = phase.changed() => {
                let current = *phase.borrow_and_update();
                match (changed, current) {
                    (Ok(()), Phase::Draining) => driver.begin_shutdown(),
                    (Ok(()), Phase::Running) => {}
                    _ => return,
                }
            }
        }
    }
}
