//! A session's feed: the records it is owed at once (a snapshot) and every later change (its
//! bus subscription), split by the engine so that no change is missed or sent twice.
//!
//! The ordering lives here, not in the caller: [`Engine::follow`] opens a till's
//! subscription and [`Engine::watch`] widens it to a terminal while the ledger holds its
//! records still ([`Ledger::follow`](super::ledger::Ledger::follow)), and the snapshot is
//! read in that same step. A change published before is in the snapshot and not announced
//! to the subscription; one published after is announced and not in the snapshot.

use std::sync::Arc;
use std::time::Duration;

use super::error::ApiError;
use super::events::Subscription;
use super::ledger::Scope;
use super::record::{parse_rfc3339, Record};
use super::Engine;
use crate::access::Till;
use crate::config::Role;

/// How long a finished transaction is replayed after a reconnecting till's `welcome`.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(600);

impl Engine {
    /// Subscribes a session of `till` to the changes of its records (an operator: of every
    /// till's, §7.3), and returns with it what the till receives after `welcome`: its
    /// records still unresolved `unknown` or finished within [`REPLAY_WINDOW`], and for an
    /// operator every till's unresolved `unknown` on the terminals it may use, in seq order
    /// (contract §5).
    pub fn follow(&self, till: &Till) -> (Subscription, Vec<Arc<Record>>) {
        let horizon = time::OffsetDateTime::now_utc() - REPLAY_WINDOW;
        let bus = &self.inner.bus;
        let operator = till.role == Role::Operator;
        // Only an operator is owed records of other tills.
        let scope = if operator {
            Scope::All
        } else {
            Scope::Till(&till.name)
        };
        self.inner.ledger.follow(
            scope,
            || {
                if operator {
                    bus.subscribe()
                } else {
                    bus.subscribe_till(&till.name)
                }
            },
            |r| {
                let recent = parse_rfc3339(&r.updated_at).is_some_and(|at| at >= horizon);
                let unresolved = r.is_unresolved();
                let own = r.till == till.name && (unresolved || (r.state.is_final() && recent));
                let overseen = operator && unresolved && till.may_use(&r.terminal);
                own || overseen
            },
        )
    }

    /// Adds `terminal` to the session's `subscription` if `till` may watch it (contract §5
    /// `watch`), and returns the terminal's latest record as it stood then, if any.
    pub fn watch(
        &self,
        till: &Till,
        subscription: &Subscription,
        terminal: &str,
    ) -> Result<Option<Arc<Record>>, ApiError> {
        self.usable_terminal(till, terminal)?;
        let ((), mut records) = self.inner.ledger.follow(
            Scope::Terminal(terminal),
            || {
                subscription.watch(terminal);
            },
            |_| true,
        );
        Ok(records.pop())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;
    use crate::config::Role;
    use crate::engine::record::{now_rfc3339, sample, State};
    use crate::engine::EngineOptions;

    const CHANGES: u64 = 300;

    fn till(name: &str, role: Role) -> Till {
        Till {
            name: name.into(),
            role,
            terminals: None,
        }
    }

    async fn engine(dir: &std::path::Path) -> Engine {
        // Never dialled: no payment runs and the probe waits a period first.
        let terminal = crate::engine::sample_terminal("tpe-1", "127.0.0.1:9");
        let options = EngineOptions {
            bus_capacity: CHANGES as usize + 8,
            probe_at_start: false,
            ..EngineOptions::default()
        };
        Engine::start(&[terminal], dir, options, None)
            .await
            .unwrap()
    }

    /// Everything left on `subscription`, by seq (outside tokio's budget, which would end
    /// the loop after 128 receptions).
    fn drain(subscription: &mut Subscription) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(Ok(record)) = tokio::task::unconstrained(subscription.recv()).now_or_never()
        {
            seqs.push(record.seq);
        }
        seqs
    }

    /// Feeds opened while `CHANGES` approved payments of till-1 on tpe-1 are committed (one
    /// seq each, 1..=CHANGES): each feed's snapshot and live stream together hold every
    /// change after the snapshot point exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_misses_and_repeats_no_change_between_snapshot_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let ledger = Arc::clone(&engine.inner.ledger);
        let writer = tokio::spawn(async move {
            // Ten at a time, sharing their fsync, so a test run takes few disk syncs.
            for batch in 0..CHANGES / 10 {
                let commits = (0..10).map(|n| {
                    let record = Record {
                        updated_at: now_rfc3339(),
                        ..sample(&format!("t{batch}.{n}"), State::Approved)
                    };
                    ledger.commit(record)
                });
                for committed in futures_util::future::join_all(commits).await {
                    committed.unwrap();
                }
            }
        });
        let (cashier, display) = (till("till-1", Role::Cashier), till("screen", Role::Display));
        let mut feeds = Vec::new();
        while !writer.is_finished() {
            let (tills, replay) = engine.follow(&cashier);
            let (screen, none) = engine.follow(&display);
            assert!(none.is_empty(), "the screen's till paid nothing");
            let latest = engine.watch(&display, &screen, "tpe-1").unwrap();
            feeds.push((tills, replay, screen, latest));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        writer.await.unwrap();
        assert!(feeds.len() > 1, "no feed opened while changes were made");

        let every: BTreeSet<u64> = (1..=CHANGES).collect();
        for (mut tills, replay, mut screen, latest) in feeds {
            // The till's feed: every change (all final, recent) either replayed or live.
            let replayed: Vec<u64> = replay.iter().map(|r| r.seq).collect();
            let live = drain(&mut tills);
            let point = replayed.last().copied().unwrap_or(0);
            assert_eq!(
                replayed,
                (1..=point).collect::<Vec<_>>(),
                "replay has holes"
            );
            assert_eq!(live, (point + 1..=CHANGES).collect::<Vec<_>>(), "stream");
            let both: BTreeSet<u64> = replayed.iter().chain(&live).copied().collect();
            assert_eq!(both, every);

            // The screen's feed: the latest record, then every later change of the terminal.
            let point = latest.map_or(0, |r| r.seq);
            let live = drain(&mut screen);
            assert_eq!(live, (point + 1..=CHANGES).collect::<Vec<_>>(), "watch");
        }
    }

    #[tokio::test]
    async fn a_refused_watch_leaves_the_subscription_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let only_tpe_2 = Till {
            terminals: Some(vec!["tpe-2".into()]),
            ..till("screen", Role::Display)
        };
        let (mut screen, _) = engine.follow(&only_tpe_2);
        assert!(engine.watch(&only_tpe_2, &screen, "tpe-1").is_err());
        assert!(engine.watch(&only_tpe_2, &screen, "nowhere").is_err());
        let record = Record {
            till: "till-1".into(),
            ..sample("a", State::Accepted)
        };
        engine.inner.ledger.commit(record).await.unwrap();
        assert!(
            drain(&mut screen).is_empty(),
            "a refused watch still streams"
        );
    }
}
