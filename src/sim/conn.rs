//! One simulated terminal connection: read the request, misbehave or answer, then keep the
//! socket open until the client closes it, as a real terminal does (unless the fault is
//! `answer-close`).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::answer;
use super::behaviour::{Behaviour, Fault, LATE_FIELDS};
use super::Shared;
use crate::protocol::{tags, Decoder, Message};

/// How long a request may take to arrive whole before it is treated as malformed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request missing mandatory fields waits for the rest.
const MISSING_GRACE: Duration = Duration::from_millis(200);
/// Pause between the segments of a `split` answer, so they travel apart.
const SPLIT_PAUSE: Duration = Duration::from_millis(50);

/// A received request: its frame, and its message when it parsed with every mandatory field.
struct Received {
    raw: String,
    message: Option<Message>,
}

/// Serves one connection with the behaviour current when it arrived.
pub(super) async fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let behaviour = shared.behaviour();
    stream.set_nodelay(true)?;
    let Some(received) = read_request(&mut stream).await? else {
        return Ok(());
    };
    shared.record(received.raw.clone());
    let Some(request) = received.message else {
        return answer_and_linger(stream, answer::MALFORMED.as_bytes(), None, None).await;
    };
    if request.get(tags::ACTION) == Some("I") {
        let frame = answer::identification(&request).encode();
        return answer_and_linger(stream, &frame, None, None).await;
    }
    let (outcome, fault) = behaviour.plan(answer::amount(&request));
    let optional = [tags::TICKET_MODE, tags::PRIVATE_DATA];
    if fault == Some(Fault::StrictTags) && optional.iter().any(|t| request.get(t).is_some()) {
        return answer_and_linger(stream, answer::MALFORMED.as_bytes(), None, None).await;
    }
    if fault == Some(Fault::Hang) {
        return wait_close(&mut stream).await;
    }
    pause(&behaviour).await;
    if fault == Some(Fault::Close) {
        return Ok(());
    }
    let wrong_echo = fault == Some(Fault::WrongEcho);
    let answer = answer::payment(&request, &outcome, wrong_echo);
    if let Some((first, rest)) = fault.and_then(|fault| in_two(&answer, fault)) {
        stream.write_all(&first).await?;
        tokio::time::sleep(LATE_FIELDS).await;
        return answer_and_linger(stream, &rest, None, Some(shared)).await;
    }
    answer_and_linger(stream, &answer.encode(), fault, Some(shared)).await
}

/// The two parts of an answer the fault sends apart: CZ and AE first (`ae-first`), or
/// everything up to AE first (`split-after-ae`).
fn in_two(answer: &Message, fault: Fault) -> Option<(Vec<u8>, Vec<u8>)> {
    let fields = answer.fields();
    let ae = fields.iter().position(|f| f.tag() == tags::STATUS)?;
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for (i, field) in fields.iter().enumerate() {
        let early = match fault {
            Fault::AeFirst => i == 0 || i == ae,
            Fault::SplitAfterAe => i <= ae,
            _ => return None,
        };
        field.encode(if early { &mut first } else { &mut rest });
    }
    Some((first, rest))
}

async fn pause(behaviour: &Behaviour) {
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
}

/// Reads until the buffer is whole fields with every mandatory field, or gives up waiting.
async fn read_request(stream: &mut TcpStream) -> io::Result<Option<Received>> {
    let mut decoder = Decoder::default();
    let mut chunk = [0u8; 1024];
    loop {
        let message = decoder.is_whole().then(|| decoder.messages().remove(0));
        if message.as_ref().is_some_and(answer::is_complete) {
            return Ok(Some(Received {
                raw: decoder.raw(),
                message,
            }));
        }
        let wait = if message.is_some() {
            MISSING_GRACE
        } else {
            REQUEST_TIMEOUT
        };
        let n = match timeout(wait, stream.read(&mut chunk)).await {
            Ok(read) => read?,
            Err(_) => 0,
        };
        if n == 0 {
            return Ok((!decoder.is_empty()).then(|| malformed(&decoder)));
        }
        if decoder.push(&chunk[..n]).is_err() {
            return Ok(Some(malformed(&decoder)));
        }
    }
}

fn malformed(decoder: &Decoder) -> Received {
    Received {
        raw: decoder.raw(),
        message: None,
    }
}

/// Writes the answer the way the fault says (noting when a payment answer was written in
/// `payment`), then stays until the client closes.
async fn answer_and_linger(
    mut stream: TcpStream,
    frame: &[u8],
    fault: Option<Fault>,
    payment: Option<&Shared>,
) -> io::Result<()> {
    match fault {
        Some(Fault::Split) => {
            // Cut inside CZ's value and in the middle: both land inside fields.
            let (a, b) = (7, frame.len() / 2 + 1);
            for piece in [&frame[..a], &frame[a..b], &frame[b..]] {
                stream.write_all(piece).await?;
                tokio::time::sleep(SPLIT_PAUSE).await;
            }
        }
        Some(Fault::Garbage) => stream.write_all(b"\x15\xffGARBAGE\r\n").await?,
        Some(Fault::Reset) => {
            stream.write_all(&frame[..frame.len() / 2]).await?;
            // SO_LINGER 0: closing sends RST instead of FIN.
            stream.set_zero_linger()?;
            return Ok(());
        }
        _ => stream.write_all(frame).await?,
    }
    if let Some(shared) = payment {
        shared.answered();
    }
    match fault {
        Some(Fault::KeepOpen) => std::future::pending().await,
        Some(Fault::AnswerClose) => Ok(()),
        _ => wait_close(&mut stream).await,
    }
}

/// Reads and discards until the client closes: the terminal never closes first.
async fn wait_close(stream: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}
