//! One browser tab, driven like a person would: real mouse clicks at an element's centre,
//! typed text, DOM predicates polled until true or a deadline, and screenshots at desktop
//! and phone sizes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cdp::Cdp;

/// How long a page condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Pause between two checks of a page condition.
const POLL: Duration = Duration::from_millis(50);

/// Viewports every screenshot is taken at: name, width, height, mobile.
const VIEWPORTS: [(&str, u32, u32, bool); 3] = [
    ("desktop", 1280, 900, false),
    ("tablet", 800, 1000, false),
    ("phone", 390, 844, true),
];

/// The visible elements whose box sticks out of the viewport sideways, or whose content is
/// wider than their box (cut, or scrolled sideways), described one per entry. Text cut on
/// purpose with an ellipsis, form fields and visually hidden labels are not counted.
const OVERFLOWING: &str = r#"(() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const e of document.querySelectorAll("body *")) {
    if (!e.checkVisibility() || ["INPUT", "TEXTAREA", "SELECT"].includes(e.tagName)) continue;
    const r = e.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) continue;
    const name = e.dataset.testid || e.id || String(e.className) || e.tagName;
    const text = (e.innerText || "").slice(0, 40);
    if (r.right > width + 1 || r.left < -1) {
      found.push(`${name} "${text}" spans ${Math.round(r.left)}..${Math.round(r.right)} of ${width}`);
    } else if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1 &&
               getComputedStyle(e).textOverflow !== "ellipsis") {
      found.push(`${name} "${text}" holds ${e.scrollWidth} px in ${e.clientWidth}`);
    }
  }
  return found;
})()"#;

/// A tab attached through a flat DevTools session.
pub struct Page {
    cdp: Arc<Cdp>,
    session: String,
}

/// The CSS selector of the element with `data-testid="{testid}"`.
pub fn tid(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// The JavaScript expression selecting the first element matching `selector`.
pub fn q(selector: &str) -> String {
    format!("document.querySelector({selector:?})")
}

impl Page {
    /// Opens a new tab in its own window, at desktop size.
    pub async fn open(cdp: Arc<Cdp>) -> Page {
        let target = cdp
            .call(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "newWindow": true}),
            )
            .await;
        let attached = cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        let page = Page { cdp, session };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page.viewport(VIEWPORTS[0]).await;
        page
    }

    /// Sends a DevTools command to this tab.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.cdp.call(Some(&self.session), method, params).await
    }

    /// Loads `url` and waits until the document is complete.
    pub async fn goto(&self, url: &str) {
        if let Some(error) = self.navigate(url).await {
            panic!("loading {url} failed: {error}");
        }
        self.wait_for(
            &format!("location.href.startsWith({url:?}) && document.readyState === 'complete'"),
            &format!("{url} loaded"),
        )
        .await;
    }

    /// Starts loading `url`; the browser's network error (`net::ERR_…`) if it failed.
    pub async fn navigate(&self, url: &str) -> Option<String> {
        let navigated = self.call("Page.navigate", json!({"url": url})).await;
        navigated["errorText"].as_str().map(str::to_owned)
    }

    /// The value of `expression` (awaited when it is a promise).
    pub async fn eval(&self, expression: &str) -> Value {
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(details) = reply.get("exceptionDetails") {
            panic!("`{expression}` threw: {details}");
        }
        reply["result"]["value"].clone()
    }

    /// Polls `predicate` until it is truthy; returns its value. Fails after [`DEADLINE`],
    /// naming `what` and the page's errors.
    pub async fn wait_for(&self, predicate: &str, what: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        // Errors while the page loads (a module not evaluated yet) count as "not yet".
        let guarded =
            format!("(() => {{ try {{ return ({predicate}); }} catch {{ return null; }} }})()");
        loop {
            let value = self.eval(&guarded).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let body = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "timed out waiting for {what} ({predicate}); page errors: {:?}; page text:\n{}",
                    self.cdp.problems(),
                    body.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the attribute `data-state` of `selector` to be `state`.
    pub async fn wait_state(&self, selector: &str, state: &str) {
        self.wait_for(
            &format!("{}?.dataset.state === {state:?}", q(selector)),
            &format!("{selector} in state {state}"),
        )
        .await;
    }

    /// The text of `selector`.
    pub async fn text(&self, selector: &str) -> String {
        let value = self
            .eval(&format!("{}?.innerText ?? null", q(selector)))
            .await;
        value
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}"))
            .to_owned()
    }

    /// The `data-{name}` attribute of `selector`.
    pub async fn data(&self, selector: &str, name: &str) -> String {
        let value = self
            .eval(&format!("{}?.dataset[{name:?}] ?? null", q(selector)))
            .await;
        value
            .as_str()
            .unwrap_or_else(|| panic!("no data-{name} on {selector}"))
            .to_owned()
    }

    /// Clicks the centre of `selector` with the mouse once it is visible and enabled.
    pub async fn click(&self, selector: &str) {
        let rect = self
            .wait_for(
                &format!(
                    "(e => {{ if (!e || e.disabled || !e.checkVisibility()) return null; \
                     e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                     return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})({})",
                    q(selector)
                ),
                &format!("{selector} clickable"),
            )
            .await;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks into the input `selector` and types `text`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Presses and releases `key` (`"Enter"`, `"Backspace"`, a digit) on the focused element,
    /// as a keyboard would.
    pub async fn press(&self, key: &str) {
        let (code, text, vk) = match key {
            "Enter" => ("Enter".to_owned(), "\r".to_owned(), 13),
            "Backspace" => ("Backspace".to_owned(), String::new(), 8),
            digit => (
                format!("Digit{digit}"),
                digit.to_owned(),
                u32::from(digit.as_bytes()[0]),
            ),
        };
        let down = json!({"type": "keyDown", "key": key, "code": code, "text": text,
                          "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk});
        self.call("Input.dispatchKeyEvent", down).await;
        let up = json!({"type": "keyUp", "key": key, "code": code,
                        "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk});
        self.call("Input.dispatchKeyEvent", up).await;
    }

    /// At each of the desktop, tablet (800 px) and phone (390 px) widths, the elements that
    /// stick out or cut their content (see `OVERFLOWING`); empty when the page fits.
    pub async fn overflowing(&self) -> Vec<String> {
        let mut found = Vec::new();
        for viewport in VIEWPORTS {
            self.viewport(viewport).await;
            let at = self.eval(OVERFLOWING).await;
            let list = at.as_array().cloned().unwrap_or_default();
            found.extend(
                list.iter()
                    .map(|e| format!("{}: {}", viewport.0, e.as_str().unwrap_or(""))),
            );
        }
        self.viewport(VIEWPORTS[0]).await;
        found
    }

    /// Saves `target/screenshots/{name}-desktop.png`, `-tablet.png` and `-phone.png` (whole
    /// page), after checking that nothing sticks out sideways.
    pub async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for viewport in VIEWPORTS {
            self.viewport(viewport).await;
            // Nothing may stick out sideways: a person would have to scroll to read it.
            let overflow = self
                .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                .await;
            assert_eq!(
                overflow,
                json!(0),
                "{name} overflows sideways at {} width",
                viewport.0
            );
            let png = self.capture().await;
            std::fs::write(dir.join(format!("{name}-{}.png", viewport.0)), png).unwrap();
        }
        self.viewport(VIEWPORTS[0]).await;
    }

    async fn viewport(&self, (_, width, height, mobile): (&str, u32, u32, bool)) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
        // Two frames: the new layout is computed and painted.
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            .await;
    }

    async fn capture(&self) -> Vec<u8> {
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let side = |viewport: &str, content: &str| {
            let shown = metrics["cssLayoutViewport"][viewport]
                .as_f64()
                .unwrap_or(0.0);
            shown.max(metrics["cssContentSize"][content].as_f64().unwrap_or(0.0))
        };
        let clip = json!({"x": 0, "y": 0, "width": side("clientWidth", "width"),
                          "height": side("clientHeight", "height"), "scale": 1});
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
            )
            .await;
        decode_base64(shot["data"].as_str().unwrap())
    }
}

/// Standard base64 (with padding) to bytes.
fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|c| *c == byte).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
