//! The engine loop's logic: engine actions become commands for the adapter (start a
//! request, on a pooled connection when one is idle; abort one), reports from request
//! tasks become engine completions, and one timer covers the engine and the pool.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::client::{ClientConfig, Completion, Endpoint, Exchange, RequestKey, Upstream};
use super::delegation::Delegation;
use super::pool::Pool;
use crate::engine::{Engine, Reader};
use crate::time::{Instant, Timestamp};

/// The shortest wait [`EngineDriver::poll_timeout`] asks for when the engine's deadline
/// did not move past the last [`EngineDriver::handle_timeout`] (it waits for completions,
/// e.g. at its concurrency bound), so the loop cannot spin.
pub const MIN_WAKE_INTERVAL: Duration = Duration::from_millis(10);

/// Reports an adapter applies in one wake-up before running the engine's timers and
/// actions again (quinn's work limiter: a busy watch stream cannot starve the rest).
pub const REPORTS_PER_WAKEUP: usize = 64;

/// What the adapter must do for the engine.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every command is a Start, moved once into its task"
)]
pub enum Command<C> {
    /// Perform `exchange` on `connection` (a pooled one, already marked reused) or on a
    /// new connection to `exchange.endpoint()`; send its completions, then
    /// [`Report::Finished`], back to [`EngineDriver::handle_report`].
    Start {
        /// The request.
        exchange: Exchange,
        /// An idle connection to the same endpoint, if the pool had one.
        connection: Option<C>,
    },
    /// Abort that request's task (its deadline passed or it was superseded); nothing
    /// more is expected from it.
    Abort(RequestKey),
}

/// What a request task reports back.
#[derive(Debug)]
pub enum Report<C> {
    /// Something for the engine ([`Exchange::poll_completion`]).
    Completion(Completion),
    /// The task ended; `connection` is handed back when [`Exchange::reusable`].
    Finished {
        /// The request.
        key: RequestKey,
        /// Where its connection goes.
        endpoint: Endpoint,
        /// The connection, to pool for the next request to `endpoint`.
        connection: Option<C>,
    },
}

/// The [`Engine`], its outgoing requests and their idle connections (`C`: the adapter's
/// stream type). Call [`handle_timeout`](Self::handle_timeout) on every wake-up (and at
/// start), drain [`poll_command`](Self::poll_command), then wait for a report or
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct EngineDriver<C> {
    engine: Engine,
    config: ClientConfig,
    pool: Pool<C>,
    commands: VecDeque<Command<C>>,
    in_flight: HashSet<RequestKey>,
    last_timeout: Option<Instant>,
    /// `Engine::synced` at the last `handle_timeout`: the engine starts its scrape loop
    /// from `handle_timeout` once synced, but syncing happens in a completion and does
    /// not move its `poll_timeout`, so a change makes the next wake-up immediate.
    synced_seen: bool,
    /// Reviews (and the ConfigMap reads) of delegated authentication and authorization.
    delegation: Option<Arc<Delegation>>,
}

impl<C> EngineDriver<C> {
    /// Drives `engine`, making requests as `config` says.
    pub fn new(engine: Engine, config: ClientConfig) -> Self {
        let pool = Pool::new(config.max_idle_per_endpoint, config.idle_timeout);
        EngineDriver {
            engine,
            config,
            pool,
            commands: VecDeque::new(),
            in_flight: HashSet::new(),
            last_timeout: None,
            synced_seen: false,
            delegation: None,
        }
    }

    /// Also sends `delegation`'s reviews and ConfigMap reads (the serving side shares it).
    /// The adapter then waits for [`poll_ready`](Self::poll_ready) too.
    pub fn with_delegation(mut self, delegation: Arc<Delegation>) -> Self {
        self.delegation = Some(delegation);
        self
    }

    /// Ready when a connection queued a review since the last
    /// [`poll_command`](Self::poll_command) (then wake up as for a timer); otherwise `cx`
    /// is woken when one is queued. Always pending without delegation.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &self.delegation {
            Some(delegation) => delegation.poll_ready(cx),
            None => Poll::Pending,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A read handle for serving the API.
    pub fn reader(&self) -> Reader {
        self.engine.reader()
    }

    /// Requests started and not yet finished or aborted.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Idle pooled connections.
    pub fn idle_connections(&self) -> usize {
        self.pool.len()
    }

    /// SIGTERM: `/readyz` fails from now on; keep driving until the adapter stops.
    pub fn begin_shutdown(&mut self) {
        self.engine.begin_shutdown();
    }

    /// Runs the engine's timers when due (always on the first call, and once the
    /// informers have synced) and expires idle connections. Early calls only do the
    /// latter.
    pub fn handle_timeout(&mut self, now: Instant, wall: Timestamp) {
        self.pool.expire(now);
        if let Some(delegation) = &self.delegation {
            for id in delegation.handle_timeout(now) {
                let key = RequestKey::Delegated(id);
                if self.in_flight.remove(&key) {
                    self.commands.push_back(Command::Abort(key));
                }
            }
        }
        let due = self.engine.poll_timeout().is_some_and(|d| d <= now);
        if self.last_timeout.is_none() || due || self.sync_changed() {
            self.engine.handle_timeout(now, wall);
            self.synced_seen = self.engine.synced();
        }
        self.last_timeout = Some(now);
    }

    fn sync_changed(&self) -> bool {
        self.engine.synced() != self.synced_seen
    }

    /// The next thing to do; `None` when there is nothing until a report or the timer.
    pub fn poll_command(&mut self, now: Instant, wall: Timestamp) -> Option<Command<C>> {
        loop {
            if let Some(command) = self.commands.pop_front() {
                return Some(command);
            }
            if let Some(command) = self.poll_delegated(now) {
                return Some(command);
            }
            let action = self.engine.poll_action(now, wall)?;
            if let Some(key) = Exchange::cancelled(&action) {
                if self.in_flight.remove(&key) {
                    return Some(Command::Abort(key));
                }
                continue;
            }
            let Some(exchange) = Exchange::new(&action, &self.config) else {
                continue;
            };
            if let Some(command) = self.start(exchange, now) {
                return Some(command);
            }
        }
    }

    /// Starts `exchange`, on an idle pooled connection when there is one. An exchange
    /// that could not even be encoded is finished already: its completions are applied
    /// at once and there is nothing to start.
    fn start(&mut self, mut exchange: Exchange, now: Instant) -> Option<Command<C>> {
        if exchange.is_finished() {
            while let Some(completion) = exchange.poll_completion() {
                self.apply(completion, now);
            }
            return None;
        }
        let connection = self.pool.checkout(exchange.endpoint(), now);
        exchange.set_reused(connection.is_some());
        self.in_flight.insert(exchange.key());
        Some(Command::Start {
            exchange,
            connection,
        })
    }

    /// Hands a completion to the engine, or to the delegation when it is a review's.
    fn apply(&mut self, completion: Completion, now: Instant) {
        match (completion, &self.delegation) {
            (Completion::Delegated { id, result }, Some(delegation)) => {
                let result = match &result {
                    Ok((status, body)) => Ok((*status, body.as_slice())),
                    Err(reason) => Err(reason.as_str()),
                };
                delegation.complete(id, result, now);
            }
            (completion, _) => completion.apply(&mut self.engine, now),
        }
    }

    /// The next review or ConfigMap read to send, if any.
    fn poll_delegated(&mut self, now: Instant) -> Option<Command<C>> {
        let delegation = Arc::clone(self.delegation.as_ref()?);
        while let Some(request) = delegation.poll_request(now) {
            let upstream = request.upstream();
            let target = match upstream {
                Upstream::Authorization => self.config.authorization.as_ref(),
                _ => self.config.authentication.as_ref(),
            };
            let Some(target) = target else {
                let reason = match upstream {
                    Upstream::Authorization => "no authorization kubeconfig",
                    _ => "no authentication kubeconfig",
                };
                delegation.complete(request.id, Err(reason), now);
                continue;
            };
            let exchange = Exchange::delegated(&request, upstream, target, &self.config);
            if let Some(command) = self.start(exchange, now) {
                return Some(command);
            }
        }
        None
    }

    /// Applies a report from a request task.
    pub fn handle_report(&mut self, now: Instant, report: Report<C>) {
        match report {
            Report::Completion(completion) => {
                if self.in_flight.contains(&completion.key()) {
                    self.apply(completion, now);
                }
            }
            Report::Finished {
                key,
                endpoint,
                connection,
            } => {
                let live = self.in_flight.remove(&key);
                if let (true, Some(connection)) = (live, connection) {
                    self.pool.checkin(endpoint, connection, now);
                }
            }
        }
    }

    /// When to wake up next (then call [`handle_timeout`](Self::handle_timeout)) if no
    /// report arrives first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.sync_changed() {
            return Some(self.last_timeout.unwrap_or(Instant::from_nanos(0)));
        }
        let engine = self
            .engine
            .poll_timeout()
            .map(|deadline| match self.last_timeout {
                Some(last) if deadline <= last => last.saturating_add(MIN_WAKE_INTERVAL),
                _ => deadline,
            });
        let delegation = self.delegation.as_ref().and_then(|d| d.poll_timeout());
        [engine, self.pool.poll_timeout(), delegation]
            .into_iter()
            .flatten()
            .min()
    }
}
