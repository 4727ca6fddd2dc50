/**
 * caisse-ap-relay browser client (ES module, no dependencies).
 *
 * Import it from the agent itself so the version always matches:
 *
 *     import { RelayClient } from "https://agent.local:8443/client.js";
 *     const relay = new RelayClient(undefined, { token });   // URL defaults to this module's agent
 *     relay.connect();
 *     const payment = relay.pay({ terminal: "tpe-1", amount: 1245, currency: "EUR" });
 *     payment.onUpdate((record) => console.log(record.state));
 *     const record = await payment.result;   // approved | declined | not_sent | unknown
 *
 * Design decisions:
 * - A payment is keyed by its id for its whole life. After a reconnect the client re-attaches
 *   with `get` (or, when the agent never acknowledged it, re-sends the same `pay`, which the
 *   agent treats as idempotent). It never invents a second id for the same payment.
 * - Final states are data, not exceptions: `result` resolves for all four of them and rejects
 *   only when the agent answers the `pay` with an `error` (a {@link RelayError}).
 * - Requests made while disconnected wait for the next authenticated connection.
 * - Close code 4401 (bad token / no hello) stops reconnecting: retrying cannot help.
 * - A record with the same final state and a higher `seq` updates that result's details
 *   (card, authorization, ticket, resolution): it is never a new result. Records marked
 *   `replay: true` (the answer to `watch`, those after `welcome`) are old ones sent again.
 *   See {@link isDetailUpdate}.
 * - The safety guards (api.md §10) refuse a `pay` with `unresolved_unknown` (`error.pending`
 *   names the payment to resolve first), `possible_duplicate` (`error.previous`: pay again
 *   with `confirmDuplicate: true` only if the customer really pays twice) or
 *   `refund_exceeds` (`error.refundable`).
 *
 * Types: see client.d.ts next to this file. Integration guide: docs/client.md.
 * @module caisse-ap-relay/client
 */

/** Transaction states that never change again (an `unknown` one can still get a resolution). */
export const FINAL_STATES = Object.freeze(["approved", "declined", "not_sent", "unknown"]);

/** Close code the agent uses when authentication failed or no `hello` came in time. */
export const CLOSE_UNAUTHORIZED = 4401;

const ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
// The agent's largest amount (protocol::currency::MAX_AMOUNT; a Rust test keeps them equal).
const MAX_AMOUNT = 999_999_999_999;

/**
 * True when `state` is one of {@link FINAL_STATES}.
 * @param {string} state
 * @returns {boolean}
 */
export function isFinal(state) {
  return FINAL_STATES.includes(state);
}

/**
 * True when `record` only adds details to the result `previous` already showed: same id,
 * same final state, higher `seq` (api.md §7.1). Show it in place, never as a new result.
 * @param {object | null | undefined} previous
 * @param {object} record
 * @returns {boolean}
 */
export function isDetailUpdate(previous, record) {
  return Boolean(previous) && previous.id === record.id && isFinal(previous.state) &&
    previous.state === record.state && record.seq > previous.seq;
}

/**
 * An error reply from the agent (or a client-side failure with the same shape).
 * `code` is one of the contract's codes (`bad_request`, `unauthorized`, `forbidden`,
 * `unknown_terminal`, `terminal_busy`, `id_conflict`, `not_found`, `too_late`,
 * `rate_limited`, `internal`, `unresolved_unknown`, `possible_duplicate`,
 * `refund_exceeds`) or a client-side one (`disconnected`, `closed`, `timeout`).
 */
export class RelayError extends Error {
  /**
   * @param {string} code machine-readable code
   * @param {string} message human text saying what to do
   * @param {string} [id] the transaction id the request named (for `pay`: the refused payment)
   * @param {string} [request] the request type this error answers
   * @param {string | {current?: string, pending?: string, previous?: string, refundable?: number, retry_after?: number}} [related]
   *   what the agent's error names besides `id` (a string: `current`, for `terminal_busy`)
   */
  constructor(code, message, id, request, related = {}) {
    super(message);
    this.name = "RelayError";
    /** @type {string} */
    this.code = code;
    /** @type {string | undefined} */
    this.id = id;
    /** @type {string | undefined} */
    this.request = request;
    const named = typeof related === "string" ? { current: related } : related ?? {};
    /** `terminal_busy`: the transaction holding the terminal. @type {string | undefined} */
    this.current = named.current;
    /** `unresolved_unknown`: the transaction to check and resolve first. @type {string | undefined} */
    this.pending = named.pending;
    /** `possible_duplicate`: the earlier, identical payment. @type {string | undefined} */
    this.previous = named.previous;
    /** `refund_exceeds`: what is left to refund, minor units. @type {number | undefined} */
    this.refundable = named.refundable;
    /** `rate_limited` (discover): seconds until the next search. @type {number | undefined} */
    this.retryAfter = named.retry_after;
  }
}

/**
 * Generates a payment id matching the agent's rule `[A-Za-z0-9._:-]{1,64}`,
 * e.g. `pos-lx2k9a1b-3f9c2a7d1e`.
 * @param {string} [prefix="pos"]
 * @returns {string}
 */
export function newPaymentId(prefix = "pos") {
  const bytes = new Uint8Array(5);
  globalThis.crypto.getRandomValues(bytes);
  const random = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${Date.now().toString(36)}-${random}`;
}

/**
 * The WebSocket URL of the agent that served this module (`wss://host:port/ws`).
 * @returns {string}
 */
export function defaultUrl() {
  const url = new URL("/ws", import.meta.url);
  url.protocol = url.protocol === "http:" ? "ws:" : "wss:";
  return url.href;
}

/**
 * Exchanges a one-time 8-digit pairing code (from `caisse-ap-relay pair --till NAME`) for a
 * till token, on a fresh socket. Store the token; never put it in a URL.
 * @param {string} code the 8 digits
 * @param {{url?: string, WebSocket?: typeof WebSocket, timeoutMs?: number}} [options]
 * @returns {Promise<{till: string, token: string}>}
 */
export function pair(code, options = {}) {
  const Socket = options.WebSocket ?? globalThis.WebSocket;
  const ws = new Socket(options.url ?? defaultUrl());
  return new Promise((resolve, reject) => {
    const fail = (err) => {
      clearTimeout(timer);
      ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new RelayError("timeout", "No answer from the agent to the pairing request.", undefined, "pair")),
      options.timeoutMs ?? 15_000,
    );
    ws.onopen = () => ws.send(JSON.stringify({ type: "pair", code: String(code).trim() }));
    ws.onmessage = (event) => {
      const msg = parseFrame(event.data);
      if (msg?.type === "paired") {
        clearTimeout(timer);
        ws.onclose = null;
        ws.close(1000);
        resolve({ till: msg.till, token: msg.token });
      } else if (msg?.type === "error") {
        fail(new RelayError(msg.code, msg.message, msg.id, "pair"));
      }
    };
    ws.onclose = (event) =>
      fail(new RelayError(event.code === CLOSE_UNAUTHORIZED ? "unauthorized" : "disconnected",
        `Pairing connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""}).`, undefined, "pair"));
  });
}

function parseFrame(data) {
  try {
    const msg = JSON.parse(data);
    return msg && typeof msg === "object" ? msg : null;
  } catch {
    return null;
  }
}

function validatePayment(req) {
  if (!ID_PATTERN.test(req.id)) return "id must be 1-64 characters among A-Z a-z 0-9 . _ : -";
  if (typeof req.terminal !== "string" || !req.terminal) return "terminal is required";
  if (!Number.isInteger(req.amount) || req.amount < 1 || req.amount > MAX_AMOUNT) {
    return "amount must be an integer number of minor units (1245 = 12.45 EUR), 1 to 12 digits";
  }
  if (typeof req.currency !== "string" || !req.currency) return "currency is required (EUR or 978)";
  if (req.refund_of !== undefined && !ID_PATTERN.test(req.refund_of)) return "refundOf must be a transaction id";
  return null;
}

/**
 * One payment: reports every state change of its record until a final state.
 * Listen with `onUpdate(cb)`, `addEventListener("update" | "final", e => e.detail)`,
 * or `for await (const record of handle)`.
 */
export class PaymentHandle extends EventTarget {
  #client;
  #resolve;
  #reject;
  #settled = false;
  #history = [];
  #waiters = [];

  /**
   * Created by {@link RelayClient#pay}; not constructed directly.
   * @param {RelayClient} client
   * @param {object} request the normalised `pay` fields
   */
  constructor(client, request) {
    super();
    this.#client = client;
    /** The payment id (generated when not given). @type {string} */
    this.id = request.id;
    /** The `pay` fields as sent. */
    this.request = Object.freeze({ ...request });
    /** The latest record, or null before the agent acknowledged. @type {object | null} */
    this.record = null;
    /** Error that ended the payment, if any. @type {RelayError | null} */
    this.error = null;
    /**
     * Resolves with the final record (approved, declined, not_sent, unknown);
     * rejects only with a {@link RelayError} when the agent refused the `pay`.
     * @type {Promise<object>}
     */
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.result.catch(() => {}); // the caller may only listen to events
  }

  /** Current state (`pending` before the first record). @returns {string} */
  get state() {
    return this.record?.state ?? "pending";
  }

  /** True once the result promise has settled. @returns {boolean} */
  get done() {
    return this.#settled;
  }

  /**
   * Calls `callback(record)` on every state change (and at once with the latest record, if any).
   * @param {(record: object) => void} callback
   * @returns {() => void} unsubscribe
   */
  onUpdate(callback) {
    const listener = (event) => callback(event.detail);
    this.addEventListener("update", listener);
    if (this.record) queueMicrotask(() => callback(this.record));
    return () => this.removeEventListener("update", listener);
  }

  /**
   * Asks the agent to cancel; works only before the request reached the terminal
   * (else rejects with `too_late`: cancel on the terminal with the red key).
   * @returns {Promise<object>} the final record (state `not_sent`)
   */
  cancel() {
    return this.#client.cancel(this.id);
  }

  /** Yields each record in order, ending after the final one. */
  async *[Symbol.asyncIterator]() {
    let index = 0;
    while (true) {
      while (index < this.#history.length) {
        const record = this.#history[index++];
        yield record;
        if (isFinal(record.state)) return;
      }
      if (this.error) throw this.error;
      if (this.#settled) return;
      await new Promise((wake) => this.#waiters.push(wake));
    }
  }

  /** @internal fed by the client for every record with this id. */
  _update(record) {
    if (this.record && record.seq !== undefined && this.record.seq !== undefined && record.seq < this.record.seq) {
      return; // an older snapshot (e.g. a `get` reply overtaken by a live change)
    }
    const changed = !this.record || this.record.seq !== record.seq || this.record.state !== record.state ||
      JSON.stringify(this.record.resolution) !== JSON.stringify(record.resolution);
    this.record = record;
    if (!changed) return;
    this.#history.push(record);
    this.dispatchEvent(new CustomEvent("update", { detail: record }));
    if (isFinal(record.state) && !this.#settled) {
      this.#settled = true;
      this.#resolve(record);
      this.dispatchEvent(new CustomEvent("final", { detail: record }));
    }
    this.#wake();
  }

  /** @internal the agent refused the payment. */
  _fail(error) {
    if (this.#settled) return;
    this.#settled = true;
    this.error = error;
    this.#reject(error);
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
    this.#wake();
  }

  #wake() {
    const waiters = this.#waiters.splice(0);
    waiters.forEach((wake) => wake());
  }
}

/**
 * A connection to the agent with automatic reconnect, `hello` and re-attachment.
 *
 * Events (all `CustomEvent`s, data in `detail`):
 * `connecting`, `open`, `authenticated` (welcome), `closed` ({code, reason, retryInMs}),
 * `state` ({state, code?, reason?, retryInMs?}) on every connection change,
 * `welcome`, `transaction` (every record received), `terminals` (list), `error` (a
 * {@link RelayError} that matched no request).
 */
export class RelayClient extends EventTarget {
  #url;
  #token;
  #Socket;
  #backoff;
  #idPrefix;
  #ws = null;
  #wanted = false;
  #attempt = 0;
  #timer = null;
  #pending = [];
  #payments = new Map();
  #watched = new Set();

  /**
   * @param {string} [url] `wss://host:8443/ws`; defaults to the agent that served this module
   * @param {{token?: string, WebSocket?: typeof WebSocket, idPrefix?: string,
   *          backoff?: {initialMs?: number, maxMs?: number, factor?: number}}} [options]
   */
  constructor(url, options = {}) {
    super();
    this.#url = url ?? defaultUrl();
    this.#token = options.token ?? null;
    this.#Socket = options.WebSocket ?? globalThis.WebSocket;
    this.#idPrefix = options.idPrefix ?? "pos";
    this.#backoff = { initialMs: 500, maxMs: 15_000, factor: 2, ...options.backoff };
    /** Connection state: `idle`, `connecting`, `open`, `authenticated` or `closed`. */
    this.state = "idle";
    /** The last `welcome` message, or null. */
    this.welcome = null;
  }

  /** The WebSocket URL in use. @returns {string} */
  get url() {
    return this.#url;
  }

  /** The till token in use (set by the constructor, {@link RelayClient#setToken} or {@link RelayClient#pair}). */
  get token() {
    return this.#token;
  }

  /**
   * Replaces the token; takes effect on the next connection.
   * @param {string | null} token
   */
  setToken(token) {
    this.#token = token;
  }

  /**
   * Opens the connection (and keeps it open until {@link RelayClient#close}).
   * @returns {Promise<object>} the current or next `welcome`; rejects with a RelayError if the
   *   connection closes for good (4401) before.
   */
  connect() {
    if (this.state === "authenticated") return Promise.resolve(this.welcome);
    const welcome = new Promise((resolve, reject) => {
      const onWelcome = (event) => { cleanup(); resolve(event.detail); };
      const onClosed = (event) => {
        if (event.detail.retryInMs === null) {
          cleanup();
          reject(new RelayError(event.detail.code === CLOSE_UNAUTHORIZED ? "unauthorized" : "closed",
            event.detail.reason || "Connection closed."));
        }
      };
      const cleanup = () => {
        this.removeEventListener("welcome", onWelcome);
        this.removeEventListener("closed", onClosed);
      };
      this.addEventListener("welcome", onWelcome);
      this.addEventListener("closed", onClosed);
    });
    welcome.catch(() => {});
    this.#wanted = true;
    if (!this.#ws && !this.#timer) this.#open();
    return welcome;
  }

  /** Closes the connection for good; pending requests reject with code `closed`. */
  close() {
    this.#wanted = false;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#failPending(new RelayError("closed", "The client was closed."), true);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
    this.#setState("closed", { code: 1000, reason: "closed by client", retryInMs: null });
  }

  /**
   * Pairs this client with a one-time code and keeps the returned token for next connections.
   * @param {string} code 8 digits from `caisse-ap-relay pair --till NAME`
   * @returns {Promise<{till: string, token: string}>}
   */
  async pair(code) {
    const paired = await pair(code, { url: this.#url, WebSocket: this.#Socket });
    this.#token = paired.token;
    return paired;
  }

  /**
   * Starts a payment (or re-attaches to one already started with the same id).
   * @param {{id?: string, terminal: string, amount: number, currency: string,
   *          action?: "debit" | "refund", method?: "card" | "check",
   *          confirmDuplicate?: boolean, refundOf?: string}} request
   *   `amount` in minor units (1245 = 12.45 EUR); `confirmDuplicate` after a
   *   `possible_duplicate` refusal (same id is fine); `refundOf` the id of the payment a
   *   refund reverses (required when the agent links refunds)
   * @returns {PaymentHandle}
   */
  pay(request) {
    const fields = {
      id: request.id ?? newPaymentId(this.#idPrefix),
      terminal: request.terminal,
      amount: request.amount,
      currency: request.currency,
      action: request.action ?? "debit",
      method: request.method ?? "card",
    };
    if (request.confirmDuplicate) fields.confirm_duplicate = true;
    if (request.refundOf !== undefined) fields.refund_of = request.refundOf;
    const existing = this.#payments.get(fields.id);
    if (existing) return existing;
    const handle = new PaymentHandle(this, fields);
    const invalid = validatePayment(fields);
    if (invalid) {
      handle._fail(new RelayError("bad_request", invalid, fields.id, "pay"));
      return handle;
    }
    this.#payments.set(fields.id, handle);
    this.#sendPay(handle);
    return handle;
  }

  /**
   * The current record of a transaction.
   * @param {string} id
   * @returns {Promise<object>}
   */
  get(id) {
    return this.#request({ type: "get", id }, { id, accept: () => true });
  }

  /**
   * Records the cashier's decision on an `unknown` transaction, after checking the ticket.
   * @param {string} id
   * @param {"approved" | "not_charged"} outcome what the terminal's ticket says
   * @param {string} [note] free text
   * @returns {Promise<object>} the record carrying its `resolution`
   */
  resolve(id, outcome, note) {
    const message = { type: "resolve", id, outcome };
    if (note) message.note = note;
    return this.#request(message, { id, accept: (record) => Boolean(record.resolution) });
  }

  /**
   * Cancels a payment not yet sent to the terminal; rejects with `too_late` afterwards.
   * @param {string} id
   * @returns {Promise<object>} the final record
   */
  cancel(id) {
    return this.#request({ type: "cancel", id }, { id, accept: (record) => isFinal(record.state) });
  }

  /**
   * Receives every transaction of that terminal as `transaction` events, now and after
   * every reconnect. Errors (unknown terminal, forbidden) arrive as `error` events.
   * @param {string} terminal
   */
  watch(terminal) {
    this.#watched.add(terminal);
    if (this.state === "authenticated") this.#send({ type: "watch", terminal });
  }

  /**
   * Lists the terminals this till may use.
   * @returns {Promise<Array<{name: string, address: string, state: string, current: string | null}>>}
   */
  terminals() {
    return this.#request({ type: "terminals" }, { reply: "terminals" }).then((msg) => msg.terminals);
  }

  /**
   * Operator snapshot: terminals, recent transactions, connected tills, certificate.
   * @returns {Promise<{terminals: object[], transactions: object[], tills: object[], certificate: object}>}
   */
  status() {
    return this.#request({ type: "status" }, { reply: "status" });
  }

  /**
   * Operator only: searches the LAN for Caisse-AP terminals (one search a minute per agent;
   * sooner → `rate_limited`, whose message gives the seconds left). Rejects at once when
   * refused; resolves when the sweep ends, with `{subnets, port, found}` where each found
   * port has `address`, `answer` (`terminal` | `refused` | `no_answer` | `configured`) and,
   * for a terminal, `version`, `pos_id` and `block` (a ready `[[terminal]]` entry).
   * @param {{subnet?: string, port?: number}} [options] default: the agent's private /24s, port 8888
   * @returns {Promise<{subnets: string[], port: number, found: object[]}>}
   */
  async discover({ subnet, port } = {}) {
    const message = { type: "discover" };
    if (subnet) message.subnet = subnet;
    if (port) message.port = port;
    await this.#request(message, { reply: "discovering" });
    // The result comes later, after other answers: it is matched by its type only.
    return new Promise((resolve, reject) => {
      this.#pending.push({ type: "discover", kind: "discover", reply: "discovered", late: true, sent: true, resolve, reject });
    });
  }

  /**
   * Shorthand for `addEventListener(type, e => callback(e.detail))`.
   * @param {string} type an event name listed on the class
   * @param {(detail: any) => void} callback
   * @returns {() => void} unsubscribe
   */
  on(type, callback) {
    const listener = (event) => callback(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  #sendPay(handle) {
    this.#request({ type: "pay", ...handle.request }, { id: handle.id, accept: () => true, kind: "pay" })
      .catch((error) => {
        if (error.code === "disconnected") return; // re-attached after the next welcome
        this.#payments.delete(handle.id);
        handle._fail(error);
      });
  }

  #request(message, match) {
    return new Promise((resolve, reject) => {
      const entry = { type: message.type, kind: match.kind ?? message.type, ...match, resolve, reject, sent: false };
      entry.send = () => { entry.sent = true; this.#send(message); };
      this.#pending.push(entry);
      if (this.state === "authenticated") entry.send();
    });
  }

  #send(message) {
    this.#ws.send(JSON.stringify(message));
  }

  #open() {
    this.#timer = null;
    this.#setState("connecting", {});
    let ws;
    try {
      ws = new this.#Socket(this.#url);
    } catch (err) {
      this.#scheduleReconnect(1006, String(err?.message ?? err));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      this.#setState("open", {});
      ws.send(JSON.stringify({ type: "hello", token: this.#token ?? "" }));
    };
    ws.onmessage = (event) => this.#onFrame(event.data);
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#failPending(new RelayError("disconnected", "The connection to the agent was lost."), false);
      this.#scheduleReconnect(event.code, event.reason);
    };
  }

  #scheduleReconnect(code, reason) {
    if (!this.#wanted || code === CLOSE_UNAUTHORIZED) {
      this.#wanted = code === CLOSE_UNAUTHORIZED ? false : this.#wanted;
      this.#setState("closed", { code, reason, retryInMs: null });
      return;
    }
    const { initialMs, maxMs, factor } = this.#backoff;
    const ceiling = Math.min(maxMs, initialMs * factor ** this.#attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2)); // jitter: half to full
    this.#attempt += 1;
    this.#setState("closed", { code, reason, retryInMs: delay });
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #setState(state, detail) {
    this.state = state;
    const full = { state, ...detail };
    this.dispatchEvent(new CustomEvent(state, { detail: full }));
    this.dispatchEvent(new CustomEvent("state", { detail: full }));
  }

  #onFrame(data) {
    const msg = parseFrame(data);
    if (!msg) return;
    switch (msg.type) {
      case "welcome": return this.#onWelcome(msg);
      case "transaction": return this.#onRecord(msg);
      case "error": return this.#onError(msg);
      case "terminals":
        this.dispatchEvent(new CustomEvent("terminals", { detail: msg.terminals }));
        return this.#settleOrdered("terminals", msg);
      case "status": return this.#settleOrdered("status", msg);
      case "discovering": return this.#settleOrdered("discovering", msg);
      case "discovered": return this.#settleOrdered("discovered", msg);
      default: return undefined;
    }
  }

  #onWelcome(msg) {
    this.welcome = msg;
    this.#attempt = 0;
    this.#setState("authenticated", { welcome: msg });
    this.dispatchEvent(new CustomEvent("welcome", { detail: msg }));
    this.dispatchEvent(new CustomEvent("terminals", { detail: msg.terminals ?? [] }));
    for (const terminal of this.#watched) this.#send({ type: "watch", terminal });
    for (const handle of this.#payments.values()) this.#reattach(handle);
    for (const entry of this.#pending) if (!entry.sent) entry.send();
  }

  // A payment never acknowledged is re-sent with the SAME id (idempotent on the agent);
  // one already acknowledged is re-read with `get`. Either way no second charge is possible.
  #reattach(handle) {
    if (this.#pending.some((entry) => entry.kind === "pay" && entry.id === handle.id)) return;
    if (!handle.record) {
      this.#sendPay(handle);
      return;
    }
    this.get(handle.id).catch((error) => {
      if (error.code !== "disconnected") handle._fail(error);
    });
  }

  #onRecord(record) {
    const handle = this.#payments.get(record.id);
    if (handle) {
      handle._update(record);
      if (handle.done) this.#payments.delete(record.id);
    }
    this.dispatchEvent(new CustomEvent("transaction", { detail: record }));
    const matches = this.#pending.filter((entry) => entry.sent && entry.id === record.id && entry.accept?.(record));
    for (const entry of matches) this.#settle(entry, record);
  }

  #onError(msg) {
    // An error names the request's id when it has one; otherwise the agent answers in order,
    // so it belongs to the oldest request still waiting.
    const sent = this.#pending.filter((entry) => entry.sent && !entry.late);
    const entry = sent.find((e) => msg.id !== undefined && e.id === msg.id) ?? sent[0];
    const error = new RelayError(msg.code, msg.message, msg.id, entry?.type, msg);
    if (entry) {
      this.#pending.splice(this.#pending.indexOf(entry), 1);
      entry.reject(error);
    } else {
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
    }
  }

  #settleOrdered(reply, msg) {
    const entry = this.#pending.find((e) => e.sent && e.reply === reply);
    if (entry) this.#settle(entry, msg);
  }

  #settle(entry, value) {
    this.#pending.splice(this.#pending.indexOf(entry), 1);
    entry.resolve(value);
  }

  // Requests already sent on a lost socket cannot know their answer: they reject with
  // `disconnected` (payments re-attach instead). Unsent ones wait for the next connection
  // unless the client is closing for good.
  #failPending(error, all) {
    const failed = this.#pending.filter((entry) => all || entry.sent);
    this.#pending = this.#pending.filter((entry) => !failed.includes(entry));
    failed.forEach((entry) => entry.reject(error));
    if (all) {
      for (const handle of this.#payments.values()) handle._fail(error);
      this.#payments.clear();
    }
  }
}
