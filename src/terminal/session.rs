//! One request/answer exchange over an already connected stream: hooks, write, read until
//! complete. Generic over `AsyncRead + AsyncWrite` so tests can drive it over `io::duplex`
//! with paused time. The completion rule itself lives in [`crate::protocol::answer`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::{Hooks, Progress, Timeouts, UnknownReason};
use crate::protocol::fields::latin1;
use crate::protocol::mask::mask_frame;
use crate::protocol::{AnswerReader, DecodeError, Message, Step};

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
    Answer { message: Message, raw: String },
}

/// Runs the exchange: `before_send`, write the whole frame, `Sent`, read until complete.
pub(crate) async fn exchange<S>(
    stream: &mut S,
    frame: &[u8],
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
    let received = Receiver::new(timeouts, deadline).run(stream, hooks).await;
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
struct Receiver {
    reader: AnswerReader,
    deadline: Instant,
    settle: Option<Instant>,
    drain_for: std::time::Duration,
    drain_until: Option<Instant>,
    waiting_reported: bool,
}

impl Receiver {
    fn new(timeouts: &Timeouts, deadline: Instant) -> Receiver {
        Receiver {
            reader: AnswerReader::default(),
            deadline,
            settle: Some(Instant::now() + timeouts.settle),
            drain_for: timeouts.drain,
            drain_until: None,
            waiting_reported: false,
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
        let mut chunk = [0u8; 4096];
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
                None
            }
            Ok(Step::NeedMore) => None,
        }
    }

    async fn waiting(&mut self, hooks: &mut impl Hooks) {
        if !self.waiting_reported {
            self.waiting_reported = true;
            hooks.progress(Progress::WaitingCard).await;
        }
    }

    /// The answer if one is complete, else lost for `reason`.
    fn finish(&self, reason: UnknownReason, detail: &str) -> Exchange {
        match self.reader.answer() {
            Some(message) => Exchange::Answer {
                message: message.clone(),
                raw: self.reader.raw(),
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
