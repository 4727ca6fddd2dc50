//! The safety guards of contract §10, checked on a `pay` that would start a new transaction:
//! an unresolved `unknown` blocks its terminal, a payment like a recent approved one needs
//! `confirm_duplicate`, and (with `refunds = "linked"`) a refund names the debit it reverses
//! and may not exceed what is left of it.
//!
//! Pure functions over the ledger's current records and the `accepted` ones not journaled yet
//! (`super::accepting`): the caller holds the pay lock until its `accepted` is pending, so no
//! other `pay` can slip in between the check and that record.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::error::{ApiError, ErrorCode};
use super::order::Payment;
use super::record::{parse_rfc3339, Record, ResolvedAs, State};
use crate::access::Till;
use crate::config::Refunds;
use crate::protocol::Action;

/// An `unknown` older than this no longer blocks its terminal.
pub const UNKNOWN_BLOCKS_FOR: Duration = Duration::from_secs(24 * 3600);

/// What the guards let through, to journal with the new record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passed {
    /// A possible duplicate was found and the cashier confirmed it.
    pub confirmed_duplicate: bool,
}

/// The settings the guards follow.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The terminal's `guard_unknown`.
    pub guard_unknown: bool,
    /// `[server] duplicate_window`; zero = off.
    pub duplicate_window: Duration,
    /// `[server] refunds`.
    pub refunds: Refunds,
}

/// Selects the records [`check`] needs for `payment`: unresolved `unknown`s and look-alikes
/// on its terminal (look-alikes only when the duplicate guard is on), and the debit it
/// refunds with that debit's other refunds. Keeps the scan's result small whatever the
/// journal holds: a till paying the same amount all day, with the duplicate guard off, had
/// every payment of its terminal copied and sorted at each `pay`.
pub fn relevant<'a>(
    till: &'a Till,
    payment: &'a Payment,
    settings: Settings,
) -> impl Fn(&Record) -> bool + 'a {
    let duplicates = !settings.duplicate_window.is_zero();
    move |r| {
        let linked = payment
            .refund_of
            .as_deref()
            .is_some_and(|debit| r.id == debit || r.refund_of.as_deref() == Some(debit));
        let unresolved = r.is_unresolved();
        let alike = duplicates && r.amount == payment.amount && r.till == till.name;
        linked || ((unresolved || alike) && r.terminal == payment.terminal)
    }
}

/// Runs the three guards in order (blocking unknown, refund rules, duplicate).
pub fn check(
    records: &[Arc<Record>],
    settings: Settings,
    till: &Till,
    payment: &Payment,
    now: OffsetDateTime,
) -> Result<Passed, ApiError> {
    let fail = |e: ApiError| e.with_id(&payment.id);
    if settings.guard_unknown {
        if let Some(pending) = blocking(records, &payment.terminal, now) {
            return Err(fail(unresolved_unknown(&pending)));
        }
    }
    refund_rules(records, settings.refunds, payment).map_err(fail)?;
    let window = settings.duplicate_window;
    let previous = (!window.is_zero())
        .then(|| duplicate_of(records, till, payment, now - window))
        .flatten();
    match previous {
        Some(previous) if !payment.confirm_duplicate => Err(fail(possible_duplicate(&previous))),
        Some(_) => Ok(Passed {
            confirmed_duplicate: true,
        }),
        None => Ok(Passed::default()),
    }
}

/// The oldest unresolved `unknown` of `terminal` younger than [`UNKNOWN_BLOCKS_FOR`].
pub fn blocking(
    records: &[Arc<Record>],
    terminal: &str,
    now: OffsetDateTime,
) -> Option<Arc<Record>> {
    let horizon = now - UNKNOWN_BLOCKS_FOR;
    records
        .iter()
        .filter(|r| r.terminal == terminal && is_blocking(r, horizon))
        .min_by_key(|r| r.seq)
        .cloned()
}

/// True for an unresolved `unknown` last changed after `horizon`.
fn is_blocking(record: &Record, horizon: OffsetDateTime) -> bool {
    record.is_unresolved() && parse_rfc3339(&record.updated_at).is_some_and(|at| at > horizon)
}

/// True when `record` counts as money taken: approved, or `unknown` not resolved
/// `not_charged`.
fn maybe_charged(record: &Record) -> bool {
    match record.state {
        State::Approved => true,
        State::Unknown => record
            .resolution
            .as_ref()
            .is_none_or(|r| r.outcome == ResolvedAs::Approved),
        _ => false,
    }
}

/// The newest transaction of the same till with the same parameters that may have taken
/// money and last changed after `since` (its final `updated_at`; a resolution or a detail
/// update moves it later, which only widens the guard).
fn duplicate_of(
    records: &[Arc<Record>],
    till: &Till,
    payment: &Payment,
    since: OffsetDateTime,
) -> Option<Arc<Record>> {
    records
        .iter()
        .filter(|r| {
            r.till == till.name
                && r.terminal == payment.terminal
                && r.amount == payment.amount
                && r.currency == payment.currency.alpha
                && r.action == payment.action
                && r.method == payment.method
                && maybe_charged(r)
                && parse_rfc3339(&r.updated_at).is_some_and(|at| at > since)
        })
        .max_by_key(|r| r.seq)
        .cloned()
}

/// `refunds = "off"` refuses refunds; `"linked"` needs a valid `refund_of`; a `refund_of`
/// given under `"free"` is checked the same way, so the link is always true.
fn refund_rules(
    records: &[Arc<Record>],
    refunds: Refunds,
    payment: &Payment,
) -> Result<(), ApiError> {
    if payment.action != Action::Refund {
        return Ok(());
    }
    match (refunds, &payment.refund_of) {
        (Refunds::Off, _) => Err(ApiError::new(
            ErrorCode::Forbidden,
            "refunds are turned off on this agent ([server] refunds = \"off\"); refund from the \
             terminal's own menu or ask the manager",
        )),
        (Refunds::Linked, None) => Err(ApiError::bad_request(
            "a refund needs `refund_of`: the id of the approved payment it reverses \
             ([server] refunds = \"linked\")",
        )),
        (_, None) => Ok(()),
        (_, Some(debit_id)) => linked_refund(records, payment, debit_id),
    }
}

fn linked_refund(
    records: &[Arc<Record>],
    payment: &Payment,
    debit_id: &str,
) -> Result<(), ApiError> {
    let debit = records.iter().find(|r| r.id == debit_id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no payment {debit_id:?} in the journal (it may be older than its retention); \
                 check the id on the receipt"
            ),
        )
    })?;
    let approved = match (&debit.state, &debit.resolution) {
        (State::Approved, _) => true,
        (State::Unknown, Some(r)) => r.outcome == ResolvedAs::Approved,
        _ => false,
    };
    if debit.action != Action::Debit || !approved {
        return Err(ApiError::bad_request(format!(
            "payment {debit_id:?} is not an approved debit; only an approved payment can be refunded"
        )));
    }
    if debit.currency != payment.currency.alpha {
        return Err(ApiError::bad_request(format!(
            "payment {debit_id:?} was in {}; refund it in the same currency",
            debit.currency
        )));
    }
    let paid = debit
        .result
        .as_ref()
        .and_then(|r| r.approved_amount)
        .unwrap_or(debit.amount);
    let refunded: u64 = records
        .iter()
        .filter(|r| r.refund_of.as_deref() == Some(debit_id) && r.id != payment.id)
        .filter(|r| !r.state.is_final() || maybe_charged(r))
        .map(|r| r.amount)
        .sum();
    let left = paid.saturating_sub(refunded);
    if payment.amount > left {
        let mut error = ApiError::new(
            ErrorCode::RefundExceeds,
            format!(
                "refund of {} exceeds what is left of payment {debit_id:?}: {left} of {paid} \
                 (minor units) after its other refunds",
                payment.amount
            ),
        );
        error.refundable = Some(left);
        return Err(error);
    }
    Ok(())
}

fn unresolved_unknown(pending: &Record) -> ApiError {
    let mut error = ApiError::new(
        ErrorCode::UnresolvedUnknown,
        format!(
            "terminal {} has a payment with an unknown result ({}, {} minor units): check the \
             terminal's ticket and resolve it before the next payment",
            pending.terminal, pending.id, pending.amount
        ),
    );
    error.related = Some(pending.id.clone());
    error
}

fn possible_duplicate(previous: &Record) -> ApiError {
    let mut error = ApiError::new(
        ErrorCode::PossibleDuplicate,
        format!(
            "the same amount was just charged on this terminal ({}); send again with \
             `confirm_duplicate: true` only if the customer really pays twice",
            previous.id
        ),
    );
    error.related = Some(previous.id.clone());
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::engine::record::{format_rfc3339, sample, Resolution, ResolvedBy};
    use crate::protocol::{Currency, Method};

    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-23 12:00:00 UTC);

    fn till(name: &str) -> Till {
        Till {
            name: name.into(),
            role: Role::Cashier,
            terminals: None,
        }
    }

    fn payment(id: &str) -> Payment {
        Payment {
            id: id.into(),
            terminal: "tpe-1".into(),
            amount: 100,
            currency: Currency::parse("EUR").unwrap(),
            action: Action::Debit,
            method: Method::Card,
            confirm_duplicate: false,
            refund_of: None,
        }
    }

    fn refund(id: &str, amount: u64, of: &str) -> Payment {
        Payment {
            amount,
            action: Action::Refund,
            refund_of: Some(of.into()),
            ..payment(id)
        }
    }

    /// `record` of state `state`, last changed `ago` before [`NOW`].
    fn ended(id: &str, state: State, ago: Duration) -> Record {
        let mut record = sample(id, state);
        record.updated_at = format_rfc3339(NOW - ago);
        record.seq = id.len() as u64;
        record
    }

    fn resolved(mut record: Record, outcome: ResolvedAs) -> Record {
        record.resolution = Some(Resolution {
            outcome,
            note: None,
            till: "till-1".into(),
            by_role: ResolvedBy::Cashier,
            at: record.updated_at.clone(),
        });
        record
    }

    fn settings() -> Settings {
        Settings {
            guard_unknown: true,
            duplicate_window: Duration::from_secs(60),
            refunds: Refunds::Free,
        }
    }

    fn run(
        records: Vec<Record>,
        settings: Settings,
        payment: &Payment,
    ) -> Result<Passed, ApiError> {
        let records: Vec<_> = records.into_iter().map(Arc::new).collect();
        let kept: Vec<_> = records
            .iter()
            .filter(|r| relevant(&till("till-1"), payment, settings)(r))
            .cloned()
            .collect();
        check(&kept, settings, &till("till-1"), payment, NOW)
    }

    fn refused(records: Vec<Record>, settings: Settings, payment: &Payment) -> ApiError {
        run(records, settings, payment).unwrap_err()
    }

    #[test]
    fn an_unresolved_unknown_blocks_its_terminal_for_a_day() {
        let mut other_terminal = ended("u0", State::Unknown, Duration::from_secs(10));
        other_terminal.terminal = "tpe-2".into();
        let mut other_amount = ended("u1", State::Unknown, Duration::from_secs(3600));
        other_amount.amount = 999;
        other_amount.till = "till-2".into();
        let error = refused(
            vec![other_terminal.clone(), other_amount],
            settings(),
            &payment("p"),
        );
        assert_eq!(error.code, ErrorCode::UnresolvedUnknown);
        assert_eq!(error.related.as_deref(), Some("u1"));
        assert_eq!(error.id.as_deref(), Some("p"));
        let old = ended(
            "u2",
            State::Unknown,
            UNKNOWN_BLOCKS_FOR + Duration::from_secs(1),
        );
        let done = resolved(
            ended("u3", State::Unknown, Duration::from_secs(7200)),
            ResolvedAs::NotCharged,
        );
        assert!(run(vec![other_terminal, old, done], settings(), &payment("p")).is_ok());
        let off = Settings {
            guard_unknown: false,
            ..settings()
        };
        let blocking = ended("u4", State::Unknown, Duration::from_secs(7200));
        assert!(run(vec![blocking], off, &payment("p")).is_ok());
    }

    #[test]
    fn the_same_payment_within_the_window_needs_a_confirmation() {
        let recent = ended("a1", State::Approved, Duration::from_secs(30));
        let error = refused(vec![recent.clone()], settings(), &payment("p"));
        assert_eq!(error.code, ErrorCode::PossibleDuplicate);
        assert_eq!(error.related.as_deref(), Some("a1"));
        let confirmed = Payment {
            confirm_duplicate: true,
            ..payment("p")
        };
        let passed = run(vec![recent.clone()], settings(), &confirmed).unwrap();
        assert!(passed.confirmed_duplicate);
        let off = Settings {
            duplicate_window: Duration::ZERO,
            ..settings()
        };
        assert_eq!(
            run(vec![recent.clone()], off, &payment("p")),
            Ok(Passed::default())
        );
        let other_amount = Payment {
            amount: 101,
            ..payment("p")
        };
        assert_eq!(
            run(vec![recent], settings(), &other_amount),
            Ok(Passed::default())
        );
    }

    #[test]
    fn look_alikes_are_selected_only_while_the_duplicate_guard_is_on() {
        let alike = ended("a1", State::Approved, Duration::from_secs(30));
        let unknown = ended("u1", State::Unknown, Duration::from_secs(30));
        let off = Settings {
            duplicate_window: Duration::ZERO,
            ..settings()
        };
        let (till, payment) = (till("till-1"), payment("p"));
        let kept = |settings| {
            let keep = relevant(&till, &payment, settings);
            [&alike, &unknown]
                .into_iter()
                .filter(|r| keep(r))
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(settings()), ["a1", "u1"]);
        assert_eq!(kept(off), ["u1"], "the unresolved unknown still blocks");
    }

    #[test]
    fn only_what_may_have_charged_counts_as_a_duplicate() {
        let recent = Duration::from_secs(5);
        let unknown_paid = resolved(ended("u", State::Unknown, recent), ResolvedAs::Approved);
        let error = refused(vec![unknown_paid], settings(), &payment("p"));
        assert_eq!(error.code, ErrorCode::PossibleDuplicate);
        let harmless = vec![
            ended("d", State::Declined, recent),
            ended("n", State::NotSent, recent),
            resolved(ended("x", State::Unknown, recent), ResolvedAs::NotCharged),
            ended("old", State::Approved, Duration::from_secs(61)),
        ];
        assert_eq!(
            run(harmless, settings(), &payment("p")),
            Ok(Passed::default())
        );
        let mut other_till = ended("t", State::Approved, recent);
        other_till.till = "till-2".into();
        assert_eq!(
            run(vec![other_till], settings(), &payment("p")),
            Ok(Passed::default())
        );
    }

    #[test]
    fn refunds_follow_the_policy() {
        let linked = Settings {
            refunds: Refunds::Linked,
            duplicate_window: Duration::ZERO,
            ..settings()
        };
        let debit = {
            let mut debit = ended("sale", State::Approved, Duration::from_secs(600));
            debit.amount = 1000;
            debit
        };
        let free_refund = Payment {
            action: Action::Refund,
            ..payment("r")
        };
        assert!(run(vec![], settings(), &free_refund).is_ok());
        assert_eq!(
            refused(vec![], linked, &free_refund).code,
            ErrorCode::BadRequest
        );
        let off = Settings {
            refunds: Refunds::Off,
            ..settings()
        };
        assert_eq!(
            refused(vec![], off, &free_refund).code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            refused(vec![], linked, &refund("r", 100, "nope")).code,
            ErrorCode::NotFound
        );
        assert!(run(vec![debit.clone()], linked, &refund("r", 1000, "sale")).is_ok());
        let mut earlier = ended("r0", State::Approved, Duration::from_secs(60));
        earlier.action = Action::Refund;
        earlier.refund_of = Some("sale".into());
        earlier.amount = 600;
        let in_flight = Record {
            id: "r1".into(),
            state: State::Sent,
            amount: 300,
            ..earlier.clone()
        };
        let declined = Record {
            id: "r2".into(),
            state: State::Declined,
            amount: 900,
            ..earlier.clone()
        };
        let records = vec![debit.clone(), earlier, in_flight, declined];
        let error = refused(records.clone(), linked, &refund("r", 101, "sale"));
        assert_eq!(error.code, ErrorCode::RefundExceeds);
        assert_eq!(error.refundable, Some(100));
        assert!(run(records, linked, &refund("r", 100, "sale")).is_ok());
        let mut dollars = refund("r", 10, "sale");
        dollars.currency = Currency::parse("USD").unwrap();
        assert_eq!(
            refused(vec![debit], linked, &dollars).code,
            ErrorCode::BadRequest
        );
        let declined_sale = ended("sale", State::Declined, Duration::from_secs(60));
        let error = refused(vec![declined_sale], linked, &refund("r", 10, "sale"));
        assert_eq!(error.code, ErrorCode::BadRequest);
    }
}
