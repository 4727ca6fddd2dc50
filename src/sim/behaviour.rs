//! What the simulator does with a request: the outcome it answers and the fault it commits,
//! parsed from the `simulate` CLI strings, plus the demo's magic amounts.

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// The answer the simulated terminal gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Approved, CB contact chip (`approved`).
    #[default]
    Approved,
    /// Declined with this AF code (`declined:04`).
    Declined(String),
    /// Approved, CB contactless (`cb-contactless`).
    CbContactless,
    /// Approved, American Express (`amex`).
    Amex,
    /// Approved for at most this many minor units (`partial:1000`).
    Partial(u64),
    /// Approved, with the whole card number in AA, as a careless terminal might (`full-pan`).
    FullPan,
}

/// A misbehaviour of the simulated terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer in three TCP segments, cut inside fields (`split`).
    Split,
    /// Answer, then never close, even after the client closed (`keep-open`).
    KeepOpen,
    /// Answer with bytes that are not Caisse-AP (`garbage`).
    Garbage,
    /// Answer approved with a CE not matching the request (`wrong-echo`).
    WrongEcho,
    /// Close without answering (`close`).
    Close,
    /// Never answer (`hang`).
    Hang,
    /// Wait a second before each accept (`slow-accept`).
    SlowAccept,
    /// Send half the answer, then reset the connection (RST) (`reset`).
    Reset,
    /// Answer with AE right after CZ, and the other fields [`LATE_FIELDS`] later
    /// (`ae-first`): the result can be decided only once the echoes arrive.
    AeFirst,
    /// Answer up to AE, and the fields after it (card, ticket) [`LATE_FIELDS`] later
    /// (`split-after-ae`): the result is decided before the details arrive.
    SplitAfterAe,
    /// Answer, then close the connection at once (`answer-close`), as some terminals do.
    AnswerClose,
    /// Refuse a request carrying CK or CF with AE=01 AF=09, as terminals that reject unknown
    /// tags do (`strict-tags`).
    StrictTags,
}

/// How long the second part of an `ae-first` or `split-after-ae` answer waits: within the
/// driver's 300 ms drain.
pub const LATE_FIELDS: Duration = Duration::from_millis(200);

/// Everything the simulator does, changeable at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Behaviour {
    /// The answer.
    pub outcome: Outcome,
    /// The misbehaviour, if any.
    pub fault: Option<Fault>,
    /// Pause before answering ("card reading").
    pub delay: Duration,
    /// Let the amount's last two digits pick the outcome (see [`Behaviour::demo`]).
    pub magic_amounts: bool,
}

/// A CLI string that names no outcome or fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Unknown outcome.
    #[error("unknown outcome {0:?}: approved, declined:AF, cb-contactless, amex, partial:AMOUNT, full-pan")]
    Outcome(String),
    /// Unknown fault.
    #[error("unknown fault {0:?}: split, keep-open, garbage, wrong-echo, close, hang, slow-accept, reset, strict-tags, ae-first, split-after-ae, answer-close")]
    Fault(String),
}

impl FromStr for Outcome {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Outcome, ParseError> {
        let bad = || ParseError::Outcome(text.to_string());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match text.split_once(':') {
            None if text == "approved" => Ok(Outcome::Approved),
            None if text == "cb-contactless" => Ok(Outcome::CbContactless),
            None if text == "amex" => Ok(Outcome::Amex),
            None if text == "full-pan" => Ok(Outcome::FullPan),
            Some(("declined", af)) if af.len() == 2 && digits(af) => {
                Ok(Outcome::Declined(af.to_string()))
            }
            Some(("partial", amount)) if digits(amount) && amount.len() <= 12 => {
                Ok(Outcome::Partial(amount.parse().map_err(|_| bad())?))
            }
            _ => Err(bad()),
        }
    }
}

impl FromStr for Fault {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Fault, ParseError> {
        Ok(match text {
            "split" => Fault::Split,
            "keep-open" => Fault::KeepOpen,
            "garbage" => Fault::Garbage,
            "wrong-echo" => Fault::WrongEcho,
            "close" => Fault::Close,
            "hang" => Fault::Hang,
            "slow-accept" => Fault::SlowAccept,
            "reset" => Fault::Reset,
            "ae-first" => Fault::AeFirst,
            "split-after-ae" => Fault::SplitAfterAe,
            "answer-close" => Fault::AnswerClose,
            "strict-tags" => Fault::StrictTags,
            _ => return Err(ParseError::Fault(text.to_string())),
        })
    }
}

impl Behaviour {
    /// Approves at once, with `fault` (`Fault` or `Option<Fault>`; none: a well-behaved
    /// terminal).
    pub fn with_fault(fault: impl Into<Option<Fault>>) -> Behaviour {
        Behaviour {
            fault: fault.into(),
            ..Behaviour::default()
        }
    }

    /// The demo terminal: approves after 1.5 s of "card reading", and the amount's cents
    /// pick other outcomes (see the module table in [`crate::sim`]).
    pub fn demo() -> Behaviour {
        Behaviour {
            outcome: Outcome::Approved,
            fault: None,
            delay: Duration::from_millis(1500),
            magic_amounts: true,
        }
    }

    /// The outcome and fault for a request of `amount` minor units.
    pub fn plan(&self, amount: Option<u64>) -> (Outcome, Option<Fault>) {
        let magic = amount.filter(|_| self.magic_amounts).map(|a| (a, a % 100));
        match magic {
            Some((_, 91)) => (Outcome::Declined("04".into()), None),
            Some((_, 92)) => (Outcome::Declined("11".into()), None),
            Some((a, 93)) => (Outcome::Partial((a / 2).max(1)), None),
            Some((_, 94)) => (Outcome::Approved, Some(Fault::Close)),
            Some((_, 95)) => (Outcome::Approved, Some(Fault::WrongEcho)),
            Some((_, 96)) => (Outcome::Approved, Some(Fault::Garbage)),
            Some((_, 97)) => (Outcome::CbContactless, None),
            _ => (self.outcome.clone(), self.fault),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_strings_parse() {
        assert_eq!("approved".parse(), Ok(Outcome::Approved));
        assert_eq!("declined:04".parse(), Ok(Outcome::Declined("04".into())));
        assert_eq!("partial:1000".parse(), Ok(Outcome::Partial(1000)));
        assert_eq!("amex".parse(), Ok(Outcome::Amex));
        assert_eq!("reset".parse(), Ok(Fault::Reset));
        assert_eq!("keep-open".parse(), Ok(Fault::KeepOpen));
        assert_eq!("ae-first".parse(), Ok(Fault::AeFirst));
        assert_eq!("split-after-ae".parse(), Ok(Fault::SplitAfterAe));
        assert_eq!("answer-close".parse(), Ok(Fault::AnswerClose));
    }

    #[test]
    fn bad_cli_strings_are_typed_errors() {
        for bad in [
            "",
            "declined",
            "declined:4",
            "declined:x1",
            "partial:",
            "partial:-1",
            "ok",
        ] {
            assert!(bad.parse::<Outcome>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "boom".parse::<Fault>(),
            Err(ParseError::Fault("boom".into()))
        );
    }

    #[test]
    fn demo_cents_pick_the_outcome() {
        let demo = Behaviour::demo();
        assert_eq!(demo.plan(Some(1200)), (Outcome::Approved, None));
        assert_eq!(demo.plan(Some(1291)).0, Outcome::Declined("04".into()));
        assert_eq!(demo.plan(Some(1292)).0, Outcome::Declined("11".into()));
        assert_eq!(demo.plan(Some(1293)).0, Outcome::Partial(646));
        assert_eq!(demo.plan(Some(1294)).1, Some(Fault::Close));
        assert_eq!(demo.plan(Some(1295)).1, Some(Fault::WrongEcho));
        assert_eq!(demo.plan(None), (Outcome::Approved, None));
        assert_eq!(
            Behaviour::default().plan(Some(1291)),
            (Outcome::Approved, None)
        );
    }
}
