//! Crash and fail points: a TEST HOOK that stops the agent, or fails one journal write, at a
//! named step of a transaction, so that tests can prove what a crash or a full disk there
//! leaves behind (`tests/suite/crash.rs`, `tests/suite/journal_faults.rs`).
//!
//! - `CAISSE_AP_RELAY_CRASH_AT=POINT` aborts the process (as `kill -9` would: no unwinding,
//!   no flush) the first time `POINT` is reached.
//! - `CAISSE_AP_RELAY_FAIL_AT=POINT` makes the journal append at `POINT` fail once, as a
//!   full disk would, without writing it.
//!
//! Points are `STATE.before_fsync` / `STATE.after_fsync` around the journal write that
//! carries a record in `STATE` (`accepted`, `connecting`, `sent`, `waiting_card`,
//! `approved`, ...; `accepted`, `connecting` and `sent` usually share one write, see
//! `super::transaction`; `sent` is journaled before the request is written, so
//! `sent.after_fsync` is also "just before the send"), `send.after` once the whole request
//! was written, and `STATE.fsync` for fail points (the whole write carrying `STATE` fails). Both variables are read once; unset, a point costs one
//! comparison with `None`.
//!
//! The hooks exist only in debug builds (`cargo test`, `cargo build`): a release build has
//! [`crash_at`] and [`fail_at`] as empty functions and neither variable name in its binary
//! (`strings target/release/caisse-ap-relay | grep -c CAISSE_AP_RELAY_` prints 0).

#[cfg(debug_assertions)]
pub use hooks::{crash_at, fail_at, CRASH_VAR, FAIL_VAR};

/// Release build: no hook.
#[cfg(not(debug_assertions))]
pub fn crash_at(_stage: &str, _step: &str) {}

/// Release build: no hook, every append is made.
#[cfg(not(debug_assertions))]
pub fn fail_at(_stage: &str, _step: &str) -> bool {
    false
}

#[cfg(debug_assertions)]
mod hooks {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    /// Names the point where the process aborts.
    pub const CRASH_VAR: &str = "CAISSE_AP_RELAY_CRASH_AT";
    /// Names the journal append that fails once.
    pub const FAIL_VAR: &str = "CAISSE_AP_RELAY_FAIL_AT";

    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    static FAIL_AT: OnceLock<Option<String>> = OnceLock::new();
    static FAILED: AtomicBool = AtomicBool::new(false);

    fn armed(cell: &'static OnceLock<Option<String>>, var: &str) -> Option<&'static str> {
        cell.get_or_init(|| std::env::var(var).ok()).as_deref()
    }

    /// Whether `armed` names the point `stage.step`.
    fn names(armed: &str, stage: &str, step: &str) -> bool {
        armed
            .strip_prefix(stage)
            .and_then(|rest| rest.strip_prefix('.'))
            == Some(step)
    }

    /// Aborts the process when [`CRASH_VAR`] names `stage.step`.
    pub fn crash_at(stage: &str, step: &str) {
        if armed(&CRASH_AT, CRASH_VAR).is_some_and(|point| names(point, stage, step)) {
            eprintln!("crash point {stage}.{step} reached: aborting");
            std::process::abort();
        }
    }

    /// `true` the first time `stage.step` is reached when [`FAIL_VAR`] names it.
    pub fn fail_at(stage: &str, step: &str) -> bool {
        armed(&FAIL_AT, FAIL_VAR).is_some_and(|point| names(point, stage, step))
            && !FAILED.swap(true, Ordering::Relaxed)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_point_is_named_by_stage_dot_step() {
            assert!(names("sent.before_fsync", "sent", "before_fsync"));
            assert!(!names("sent.before_fsync", "sent", "after_fsync"));
            assert!(!names("sentx.before_fsync", "sent", "before_fsync"));
            assert!(!names("sent", "sent", ""));
        }
    }
}
