//! A minimal Chrome DevTools Protocol client: one WebSocket to the browser endpoint, commands
//! matched to replies by `id`, tabs reached through flat sessions (`sessionId` on each
//! message). Page exceptions and console errors are kept so that a failing wait can show
//! them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long one DevTools command may take.
const COMMAND_WAIT: Duration = Duration::from_secs(20);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// The browser-level DevTools connection.
pub struct Cdp {
    sink: tokio::sync::Mutex<SplitSink<WebSocketStream<TcpStream>, Message>>,
    pending: Pending,
    problems: Arc<Mutex<Vec<String>>>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

impl Cdp {
    /// Connects to `ws://127.0.0.1:{port}{path}` (the browser target).
    pub async fn connect(port: u16, path: &str) -> Cdp {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("DevTools port accepts");
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tokio_tungstenite::client_async(url, tcp)
            .await
            .expect("DevTools WebSocket handshake");
        let (sink, stream) = ws.split();
        let pending = Pending::default();
        let problems = Arc::new(Mutex::new(Vec::new()));
        let reader = tokio::spawn(read_loop(stream, pending.clone(), problems.clone()));
        Cdp {
            sink: tokio::sync::Mutex::new(sink),
            pending,
            problems,
            next_id: AtomicU64::new(1),
            reader,
        }
    }

    /// Sends `method` (to the tab of `session`, if any) and returns its `result`.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.sink
            .lock()
            .await
            .send(Message::text(command.to_string()))
            .await
            .expect("DevTools socket open");
        let reply = tokio::time::timeout(COMMAND_WAIT, rx)
            .await
            .unwrap_or_else(|_| panic!("no DevTools reply to {method} in time"))
            .unwrap_or_else(|_| panic!("the browser went away during {method}"));
        if let Some(error) = reply.get("error") {
            panic!("DevTools {method} failed: {error}");
        }
        reply["result"].clone()
    }

    /// Exceptions and console errors the pages reported so far.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<TcpStream>>,
    pending: Pending,
    problems: Arc<Mutex<Vec<String>>>,
) {
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else { continue };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(id) = message["id"].as_u64() {
            if let Some(tx) = pending.lock().unwrap().remove(&id) {
                let _ = tx.send(message);
            }
        } else if let Some(problem) = page_problem(&message) {
            problems.lock().unwrap().push(problem);
        }
    }
    // Dropping the senders tells every waiting caller that the browser is gone.
    pending.lock().unwrap().clear();
}

fn page_problem(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(format!(
            "exception: {}",
            params["exceptionDetails"]["exception"]["description"]
        )),
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            Some(format!("console.error: {}", params["args"]))
        }
        _ => None,
    }
}
