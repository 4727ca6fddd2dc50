//! One request/answer exchange over an already connected stream: hooks, write, read until
//! complete. Generic over `AsyncRead + AsyncWrite` so tests can drive it over `io::duplex`
//! with paused time. The completion rule itself lives in [`crate::protocol::answer`].
//!
//! For a payment, an answer that decides the outcome ([`crate::protocol::decides`]) is reported
//! at once through [`Hooks::decided`] (api.md §7.1); the drain goes on, and each new field it
//! brings is added to that answer and reported again. Once decided, the outcome's kind never
//! changes: bytes that do not parse, or repeat a tag the answer has, are logged and kept out.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::{judge, Hooks, Outcome, Progress, Timeouts, UnknownReason};
use crate::protocol::answer::first_values;
use crate::protocol::fields::{decode_field, latin1, MAX_BUFFER};
use crate::protocol::mask::mask_frame;
use crate::protocol::{
    decides, interpret, tags, AnswerReader, DecodeError, Field, Message, PaymentRequest, Step,
};

/// How an exchange ended, before the answer is judged.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// Not a byte was written.
    NotSent(String),
    /// Bytes were written and no complete answer came.
    Lost {
        reason: UnknownReason,
        detail: String,
        raw: Option<String>,
    },
    /// A complete final answer (the last message received) and every byte received.
    Answer {
        message: Message,
        raw: String,
        /// The outcome last reported through [`Hooks::decided`], if the answer decided early.
        decided: Option<Box<Outcome>>,
    },
}

/// Runs the exchange: `before_send`, write the whole frame, `Sent`, read until complete.
/// With `payment`, a deciding answer is judged and reported before the drain ends.
pub(crate) async fn exchange<S>(
    stream: &mut S,
    frame: &[u8],
    payment: Option<&PaymentRequest>,
    timeouts: &Timeouts,
    hooks: &mut impl Hooks,
) -> Exchange
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !hooks.before_send().await {
        return Exchange::NotSent("cancelled before sending".into());
    }
    // One deadline for the whole transaction, from the first byte written.
    let deadline = Instant::now() + timeouts.deadline;
    if let Err(failed) = send(stream, frame, deadline).await {
        return failed;
    }
    // Requests carry no card data; answers are masked (raw frames only at debug level).
    tracing::debug!(frame = %latin1(frame), "caisse-ap request sent");
    hooks.progress(Progress::Sent).await;
    let received = Receiver::new(timeouts, deadline, payment)
        .run(stream, hooks)
        .await;
    if let Exchange::Answer { raw, .. } | Exchange::Lost { raw: Some(raw), .. } = &received {
        tracing::debug!(frame = %mask_frame(raw), "caisse-ap answer received");
    }
    received
}

/// Writes the frame, counting the bytes the stream accepted: zero accepted means not sent.
async fn send<S>(stream: &mut S, frame: &[u8], deadline: Instant) -> Result<(), Exchange>
where
    S: AsyncWrite + Unpin,
{
    let mut written = 0;
    while written < frame.len() {
        let (reason, detail) = match timeout_at(deadline, stream.write(&frame[written..])).await {
            Ok(Ok(n)) if n > 0 => {
                written += n;
                continue;
            }
            Ok(Ok(_)) => (
                UnknownReason::ConnectionLost,
                "connection closed while writing".into(),
            ),
            Ok(Err(err)) => (
                UnknownReason::ConnectionLost,
                format!("write failed: {err}"),
            ),
            Err(_) => (
                UnknownReason::Timeout,
                "timed out writing the request".into(),
            ),
        };
        return Err(if written == 0 {
            Exchange::NotSent(detail)
        } else {
            let detail = format!("{detail} after {written} of {} bytes", frame.len());
            Exchange::Lost {
                reason,
                detail,
                raw: None,
            }
        });
    }
    match timeout_at(deadline, stream.flush()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Exchange::Lost {
            reason: UnknownReason::ConnectionLost,
            detail: "flush failed after writing the request".into(),
            raw: None,
        }),
    }
}

/// The read side: the reader plus the three timers (settle, drain, deadline).
struct Receiver<'r> {
    reader: AnswerReader,
    deadline: Instant,
    settle: Option<Instant>,
    drain_for: std::time::Duration,
    drain_until: Option<Instant>,
    waiting_reported: bool,
    payment: Option<&'r PaymentRequest>,
    decided: Option<Decided>,
}

impl<'r> Receiver<'r> {
    fn new(
        timeouts: &Timeouts,
        deadline: Instant,
        payment: Option<&'r PaymentRequest>,
    ) -> Receiver<'r> {
        Receiver {
            reader: AnswerReader::default(),
            deadline,
            settle: Some(Instant::now() + timeouts.settle),
            drain_for: timeouts.drain,
            drain_until: None,
            waiting_reported: false,
            payment,
            decided: None,
        }
    }

    /// The next instant a timer fires.
    fn wake(&self) -> Instant {
        [self.settle, self.drain_until]
            .into_iter()
            .flatten()
            .fold(self.deadline, Instant::min)
    }

    async fn run<S>(mut self, stream: &mut S, hooks: &mut impl Hooks) -> Exchange
    where
        S: AsyncRead + Unpin,
    {
        // On the heap: in the future, these 4 KiB would be allocated and moved with every
        // transaction's task. A whole answer (tickets included) usually arrives in one read,
        // so the fields after a decision amend the record once.
        let mut chunk = vec![0u8; 4096];
        loop {
            let read = timeout_at(self.wake(), stream.read(&mut chunk)).await;
            match read {
                Err(_elapsed) => {
                    let now = Instant::now();
                    if now >= self.deadline || self.drain_until.is_some_and(|d| now >= d) {
                        return self.finish(UnknownReason::Timeout, "no complete answer in time");
                    }
                    // Settle elapsed: the terminal kept the request, so it holds the card dialog.
                    self.settle = None;
                    self.waiting(hooks).await;
                }
                Ok(Ok(0)) => {
                    let detail = "terminal closed the connection before a complete answer";
                    return self.finish(UnknownReason::ConnectionLost, detail);
                }
                Ok(Err(err)) => {
                    let detail = format!("read failed: {err}");
                    return self.finish(UnknownReason::ConnectionLost, &detail);
                }
                Ok(Ok(n)) => {
                    if let Some(invalid) = self.take(&chunk[..n], hooks).await {
                        return invalid;
                    }
                }
            }
        }
    }

    /// Feeds a chunk to the reader; `Some` ends the exchange (invalid bytes).
    async fn take(&mut self, chunk: &[u8], hooks: &mut impl Hooks) -> Option<Exchange> {
        if let (Some(decided), Some(request)) = (&mut self.decided, self.payment) {
            match decided.extend(chunk) {
                // The cap only stops reading: the decided answer stands.
                Err(_) => return Some(self.finish(UnknownReason::InvalidAnswer, "too large")),
                Ok(true) => hooks.decided(decided.judge(request)).await,
                Ok(false) => {}
            }
            return None;
        }
        match self.reader.push(chunk) {
            // The cap only stops reading: an answer already complete stands.
            Err(DecodeError::TooLarge) if self.reader.answer().is_some() => {
                Some(self.finish(UnknownReason::InvalidAnswer, "answer too large"))
            }
            Err(err) => Some(self.lost(UnknownReason::InvalidAnswer, &err.to_string())),
            Ok(Step::Intermediate) => {
                self.settle = None;
                self.waiting(hooks).await;
                None
            }
            Ok(Step::Complete) => {
                // Some terminals put fields (a ticket) after AE: keep draining briefly.
                let until = Instant::now() + self.drain_for;
                self.drain_until.get_or_insert(until.min(self.deadline));
                // A final answer is there: the terminal no longer "holds the card dialog".
                self.settle = None;
                self.decide(hooks).await;
                None
            }
            Ok(Step::NeedMore) => None,
        }
    }

    /// Reports the outcome at once when the answer decides it (payments only). A tag
    /// repeated before the decision makes the answer invalid: that is judged when the
    /// drain ends, as any answer that does not decide.
    async fn decide(&mut self, hooks: &mut impl Hooks) {
        let (Some(request), Some(message)) = (self.payment, self.reader.answer()) else {
            return;
        };
        let Ok(answer) = first_values(message) else {
            return;
        };
        if decides(answer.fields()) {
            // The answer is whole fields and ends the buffer: keep what came before it
            // (Latin-1: one char per byte).
            let before = self.reader.len().saturating_sub(message.encoded_len());
            let before = self.reader.raw().chars().take(before).collect();
            let mut decided = Decided::new(before, answer.into_owned());
            hooks.decided(decided.judge(request)).await;
            self.decided = Some(decided);
        }
    }

    async fn waiting(&mut self, hooks: &mut impl Hooks) {
        if !self.waiting_reported {
            self.waiting_reported = true;
            hooks.progress(Progress::WaitingCard).await;
        }
    }

    /// The answer if one is complete, else lost for `reason`. Ends the exchange: a decided
    /// answer is handed over, not copied.
    fn finish(&mut self, reason: UnknownReason, detail: &str) -> Exchange {
        if let Some(decided) = self.decided.take() {
            return Exchange::Answer {
                message: decided.message,
                raw: decided.raw,
                decided: decided.outcome.map(Box::new),
            };
        }
        match self.reader.answer() {
            Some(message) => Exchange::Answer {
                message: message.clone(),
                raw: self.reader.raw(),
                decided: None,
            },
            None => self.lost(reason, detail),
        }
    }

    fn lost(&self, reason: UnknownReason, detail: &str) -> Exchange {
        Exchange::Lost {
            reason,
            detail: detail.to_string(),
            raw: (!self.reader.is_empty()).then(|| self.reader.raw()),
        }
    }
}

/// A deciding answer and the fields added to it while the drain goes on.
struct Decided {
    message: Message,
    /// Every byte up to the decision, then the added fields only.
    raw: String,
    /// Received after the decision, not yet whole fields.
    tail: Vec<u8>,
    /// How many bytes came after the decision.
    received: usize,
    /// Set once bytes did not parse: nothing more is added.
    ignoring: bool,
    /// The outcome last judged.
    outcome: Option<Outcome>,
}

impl Decided {
    /// The deciding `answer` (each tag once), after the bytes `before` it (AE=11 messages).
    fn new(before: String, answer: Message) -> Decided {
        Decided {
            raw: before + &answer.to_string(),
            message: answer,
            tail: Vec::new(),
            received: 0,
            ignoring: false,
            outcome: None,
        }
    }

    /// Adds the fields whose tag the answer lacks (tickets, `ZT`, may repeat); true when
    /// one was added.
    fn add(&mut self, new: impl IntoIterator<Item = Field>) -> bool {
        let mut fields = self.message.fields().to_vec();
        for field in new {
            let repeated =
                field.tag() != tags::TICKET && fields.iter().any(|f| f.tag() == field.tag());
            if repeated {
                tracing::warn!(
                    tag = field.tag(),
                    "a tag repeated after the decision; kept out of the record"
                );
                continue;
            }
            let mut text = Vec::new();
            field.encode(&mut text);
            self.raw.push_str(&latin1(&text));
            fields.push(field);
        }
        let added = fields.len() > self.message.fields().len();
        if added {
            // The first field is still the answer's CZ.
            if let Ok(message) = Message::new(fields) {
                self.message = message;
            }
        }
        added
    }

    /// Judges the answer as it stands for `request` (the kind is fixed by the decision) and
    /// keeps the outcome, so that the end of the drain does not judge (and log) it again.
    fn judge(&mut self, request: &PaymentRequest) -> &Outcome {
        let verdict = interpret(request, &self.message, &self.raw);
        self.outcome.insert(judge(verdict, &self.raw))
    }

    /// Adds the whole new fields of `chunk`: true when the answer gained one. Bytes that do
    /// not parse end the additions; more than [`MAX_BUFFER`] is an error (stop reading).
    fn extend(&mut self, chunk: &[u8]) -> Result<bool, DecodeError> {
        self.received += chunk.len();
        if self.received > MAX_BUFFER {
            tracing::warn!("too many bytes after the decision; kept out of the record");
            return Err(DecodeError::TooLarge);
        }
        if self.ignoring {
            return Ok(false);
        }
        self.tail.extend_from_slice(chunk);
        let mut fields = Vec::new();
        let mut parsed = 0;
        loop {
            match decode_field(&self.tail[parsed..]) {
                Ok(Some((field, used))) => {
                    parsed += used;
                    fields.push(field);
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(%err, "bytes after the decision do not parse; kept out of the record");
                    self.ignoring = true;
                    break;
                }
            }
        }
        self.tail.drain(..parsed);
        Ok(self.add(fields))
    }
}
