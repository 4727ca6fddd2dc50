/**
 * Types for caisse-ap-relay's browser client (`client.js`), API v2.
 * The wire format is documented in docs/protocol.md; the client's guide is docs/client.md.
 */

/** Transaction states, in order; the last four are final. */
export type State =
  | "accepted"
  | "connecting"
  | "sent"
  | "waiting_card"
  | "approved"
  | "declined"
  | "not_sent"
  | "unknown";

/** States that never change again (`unknown` can still receive a `resolution`). */
export type FinalState = "approved" | "declined" | "not_sent" | "unknown";

/** Debit (sale) or refund. */
export type Action = "debit" | "refund";
/** Card (any), cheque (CC=00C) or ANCV chèques-vacances (CC=00V). */
export type Method = "card" | "check" | "ancv";

/** Why an `unknown` transaction has no valid answer. */
export type UnknownReason = "timeout" | "connection_lost" | "invalid_answer" | "mismatch" | "agent_restart";

/** Error codes sent by the agent. */
export type AgentErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "unknown_terminal"
  | "terminal_busy"
  | "id_conflict"
  | "not_found"
  | "too_late"
  | "rate_limited"
  | "internal"
  /** §10: the terminal has an unknown payment to check and resolve first (`pending`). */
  | "unresolved_unknown"
  /** §10: the same payment was just approved (`previous`); pay with `confirmDuplicate`. */
  | "possible_duplicate"
  /** §10: the linked refund exceeds what is left of its payment (`refundable`). */
  | "refund_exceeds";

/** Codes produced by the client itself. */
export type ClientErrorCode = "disconnected" | "closed" | "timeout";

/** Every `RelayError.code`. */
export type ErrorCode = AgentErrorCode | ClientErrorCode;

/** Card details from the terminal's answer. */
export interface Card {
  /** Application name, e.g. "CB sans contact". */
  application?: string;
  /** Entry mode, e.g. "contactless". */
  entry_mode?: string;
  /** Masked PAN, e.g. "497010######1234". */
  pan?: string;
  /** Expiry YYMM. */
  expiry?: string;
  /** Card application id. */
  aid?: string;
}

/** One terminal ticket ("Ticket CB"). */
export interface Ticket {
  /** Whose copy; `null` when neither the terminal nor the text tells. */
  kind: "customer" | "merchant" | null;
  /** UTF-8 text, `\n` line ends (sanitised HTML with `ticket_format = "html"`). */
  text: string;
}

/** The decoded answer, or why there is none. */
export interface TxResult {
  /** AE status: "10" done, "01" not done. */
  ae?: string;
  /** AF reason code (two digits). */
  af?: string;
  /** English reason (declined) or an {@link UnknownReason} (unknown). */
  reason?: string;
  /** French label of the AF code, as printed by terminals. */
  label?: string;
  /** Absent from a redacted record (a display's, another till's: §7.3). */
  card?: Card;
  /** Authorization number; absent from a redacted record. */
  authorization?: string;
  /** Approved amount in minor units. */
  approved_amount?: number;
  /** True when the terminal approved less than asked: collect the rest. */
  partial?: boolean;
  /** The terminal's tickets, when its `ticket` setting asks for them (CK). Cashier
   * records and webhooks only: a display's record and a receipt never carry them. */
  ticket?: Ticket[];
  /** The raw answer frame (tickets left out); absent from a redacted record. */
  raw?: string;
  /** Human detail (not_sent, unknown). */
  detail?: string;
}

/** The cashier's decision on an `unknown` transaction. */
export interface Resolution {
  outcome: "approved" | "not_charged";
  note?: string;
  /** Till that resolved it (`cli` for `caisse-ap-relay resolve`). */
  till: string;
  /** Who resolved it. */
  by_role: "cashier" | "operator" | "cli";
  /** RFC 3339 UTC. */
  at: string;
}

/** One transaction, as carried by `transaction` messages. */
export interface TransactionRecord {
  id: string;
  till: string;
  terminal: string;
  /** Minor units (1245 = 12.45 EUR). */
  amount: number;
  /** ISO 4217 alphabetic code. */
  currency: string;
  action: Action;
  method: Method;
  state: State;
  result?: TxResult;
  resolution?: Resolution;
  /** For a refund: the payment it reverses (§10). */
  refund_of?: string;
  /** The cashier confirmed it although it looked like a duplicate (§10). */
  confirm_duplicate?: boolean;
  /**
   * True on a record sent again rather than changed: the answer to `watch` and the records
   * after `welcome` (§7.1). An old result, not a live one.
   */
  replay?: boolean;
  /** RFC 3339 UTC with milliseconds. */
  created_at: string;
  updated_at: string;
  /** Agent-wide sequence number of the last change. */
  seq: number;
  /**
   * Signed receipt (compact JWS, EdDSA) on final and resolved records (api v2 §8): forward it
   * to your backend, which verifies it with the agent's pinned key (docs/backend.md).
   * Absent from a redacted record.
   */
  receipt?: string;
}

/** A terminal as listed by `welcome`, `terminals` and `status`. */
export interface TerminalInfo {
  name: string;
  address: string;
  state: "idle" | "busy" | "unreachable";
  /** Id of the transaction holding it. */
  current: string | null;
  /** Optional: last time the terminal answered (RFC 3339), when the agent reports it. */
  last_seen?: string;
}

/**
 * What a till may do (api v2 §7.3). `cashier` pays and sees its own records in full;
 * `display` watches and sees records redacted (no `result.card`, `result.authorization`,
 * `result.raw`, `result.ticket`, `receipt`), as a cashier sees another till's records on a
 * terminal it watches; `operator` never pays, reads and resolves every till's records in
 * full and alone gets `status` and `discover`.
 */
export type Role = "cashier" | "display" | "operator";

/** A connected till (status). */
export interface TillInfo {
  name: string;
  role: Role;
  /** Open sockets. */
  sessions: number;
}

/** The agent's TLS certificate (status). */
export interface CertificateInfo {
  /** RFC 3339 expiry of the leaf. */
  not_after: string;
  /** SHA-256 fingerprint. */
  fingerprint: string;
}

/** The `pay` fields. */
export interface PayRequest {
  /** POS-chosen key, 1–64 chars `[A-Za-z0-9._:-]`; generated when omitted. */
  id?: string;
  terminal: string;
  /** Integer in minor units, 1 to 12 digits. */
  amount: number;
  /** "EUR" or "978". */
  currency: string;
  action?: Action;
  method?: Method;
  /** Pay although it looks like a duplicate (after `possible_duplicate`). */
  confirmDuplicate?: boolean;
  /** For a refund: the id of the payment it reverses. */
  refundOf?: string;
}

/** Messages sent by the client. */
export type ClientMessage =
  | { type: "hello"; token: string }
  | { type: "pair"; code: string }
  | ({ type: "pay"; id: string; confirm_duplicate?: boolean; refund_of?: string } &
      Omit<PayRequest, "confirmDuplicate" | "refundOf">)
  | { type: "cancel"; id: string }
  | { type: "get"; id: string }
  | { type: "resolve"; id: string; outcome: "approved" | "not_charged"; note?: string }
  | { type: "watch"; terminal: string }
  | { type: "terminals" }
  | { type: "status" }
  | { type: "discover"; subnet?: string; port?: number };

export interface WelcomeMessage {
  type: "welcome";
  agent: string;
  /** The contract version the agent speaks: 2 (a v1 agent sends 1). */
  api: number;
  till: string;
  role: Role;
  terminals: TerminalInfo[];
}
export interface PairedMessage { type: "paired"; till: string; token: string }
export type TransactionMessage = { type: "transaction" } & TransactionRecord;
export interface TerminalsMessage { type: "terminals"; terminals: TerminalInfo[] }
export interface ErrorMessage {
  type: "error";
  code: AgentErrorCode;
  message: string;
  id?: string;
  /** terminal_busy: the transaction holding the terminal. */
  current?: string;
  /** unresolved_unknown: the transaction to resolve first. */
  pending?: string;
  /** possible_duplicate: the earlier payment. */
  previous?: string;
  /** refund_exceeds: what is left to refund, minor units. */
  refundable?: number;
  /** rate_limited (discover): seconds until the next terminal search is allowed. */
  retry_after?: number;
}
export interface StatusMessage {
  type: "status";
  terminals: TerminalInfo[];
  transactions: TransactionRecord[];
  tills: TillInfo[];
  certificate: CertificateInfo;
  /** Each webhook's backlog and last failed attempt (api v2 §9). */
  webhooks: WebhookStatus[];
}

/** One webhook in `status`. */
export interface WebhookStatus {
  name: string;
  /** Deliveries owed and not yet acknowledged by the endpoint. */
  pending: number;
  last_error: string | null;
  last_error_at: string | null;
}

/** One open port a terminal search found (api v2 §11). */
export interface DiscoveredTerminal {
  /** "IP:port". */
  address: string;
  /** `terminal`: answered the identification; `refused`: a Caisse-AP answer, not ready;
   * `no_answer`: open, no Caisse-AP answer; `configured`: a configured terminal, not touched. */
  answer: "terminal" | "refused" | "no_answer" | "configured";
  /** Protocol version (terminal). */
  version?: string;
  /** The terminal's CJ identifier (terminal), when it sends one. */
  pos_id?: string;
  /** Why not (refused, no_answer), in English. */
  detail?: string;
  /** The configured terminal's name (configured). */
  name?: string;
  /** A ready-to-paste `[[terminal]]` entry (terminal). */
  block?: string;
}
/** The immediate answer to `discover`: the search runs; `discovered` follows. */
export interface DiscoveringMessage { type: "discovering"; subnets: string[]; port: number }
/** The end of a terminal search. */
export interface DiscoveredMessage {
  type: "discovered";
  subnets: string[];
  port: number;
  found: DiscoveredTerminal[];
}

/** Messages sent by the agent. */
export type AgentMessage =
  | WelcomeMessage
  | PairedMessage
  | TransactionMessage
  | TerminalsMessage
  | ErrorMessage
  | StatusMessage
  | DiscoveringMessage
  | DiscoveredMessage;

/** Connection states. */
export type ConnectionState = "idle" | "connecting" | "open" | "authenticated" | "closed";

export interface ConnectionDetail {
  state: ConnectionState;
  /** WebSocket close code (closed). 4401: authentication failed or no hello. */
  code?: number;
  reason?: string;
  /** Delay before the next attempt, or null when the client stopped (4401 or close()). */
  retryInMs?: number | null;
  welcome?: WelcomeMessage;
}

export declare const FINAL_STATES: readonly FinalState[];
/** 4401: authentication failed or no hello in time. */
export declare const CLOSE_UNAUTHORIZED: 4401;

export declare function isFinal(state: string): state is FinalState;
/** Same id, same final state, higher seq: details added to a result already shown (§7.1). */
export declare function isDetailUpdate(previous: TransactionRecord | null | undefined, record: TransactionRecord): boolean;
/** `pos-<time base36>-<10 hex>`. */
export declare function newPaymentId(prefix?: string): string;
/** `wss://<host of this module>/ws`. */
export declare function defaultUrl(): string;
/** Exchanges a one-time 8-digit pairing code for a till token on a fresh socket. */
export declare function pair(
  code: string,
  options?: { url?: string; WebSocket?: typeof WebSocket; timeoutMs?: number },
): Promise<{ till: string; token: string }>;

export declare class RelayError extends Error {
  constructor(
    code: ErrorCode,
    message: string,
    id?: string,
    request?: string,
    related?: string | { current?: string; pending?: string; previous?: string; refundable?: number; retry_after?: number },
  );
  readonly name: "RelayError";
  code: ErrorCode;
  /** The transaction id the request named (for `pay`: the refused payment's id). */
  id?: string;
  /** terminal_busy: the transaction holding the terminal. */
  current?: string;
  /** unresolved_unknown: the transaction to check and resolve first. */
  pending?: string;
  /** possible_duplicate: the earlier, identical payment. */
  previous?: string;
  /** refund_exceeds: what is left to refund, minor units. */
  refundable?: number;
  /** rate_limited (discover): seconds until the next terminal search. */
  retryAfter?: number;
  /** Request type this error answers (`pay`, `get`, ...). */
  request?: string;
}

export interface PaymentHandleEventMap {
  update: CustomEvent<TransactionRecord>;
  final: CustomEvent<TransactionRecord>;
  error: CustomEvent<RelayError>;
}

export declare class PaymentHandle extends EventTarget {
  readonly id: string;
  readonly request: Readonly<Required<PayRequest>>;
  /** Latest record; null until the agent acknowledged. */
  readonly record: TransactionRecord | null;
  readonly error: RelayError | null;
  /** Current state, `pending` before the first record. */
  readonly state: State | "pending";
  readonly done: boolean;
  /** Final record for all four final states; rejects only with a RelayError. */
  readonly result: Promise<TransactionRecord>;
  onUpdate(callback: (record: TransactionRecord) => void): () => void;
  /** Works before the request reached the terminal; else rejects with `too_late`. */
  cancel(): Promise<TransactionRecord>;
  [Symbol.asyncIterator](): AsyncIterator<TransactionRecord>;
  addEventListener<K extends keyof PaymentHandleEventMap>(
    type: K,
    listener: (event: PaymentHandleEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

export interface RelayClientEventMap {
  connecting: CustomEvent<ConnectionDetail>;
  open: CustomEvent<ConnectionDetail>;
  authenticated: CustomEvent<ConnectionDetail>;
  closed: CustomEvent<ConnectionDetail>;
  state: CustomEvent<ConnectionDetail>;
  welcome: CustomEvent<WelcomeMessage>;
  transaction: CustomEvent<TransactionRecord>;
  terminals: CustomEvent<TerminalInfo[]>;
  error: CustomEvent<RelayError>;
}

export interface RelayClientOptions {
  token?: string;
  /** Prefix of generated payment ids (default "pos"). */
  idPrefix?: string;
  /** Reconnect back-off: initial 500 ms, ×2, capped at 15 s, with jitter; reset after a welcome. */
  backoff?: { initialMs?: number; maxMs?: number; factor?: number };
  WebSocket?: typeof WebSocket;
}

export declare class RelayClient extends EventTarget {
  constructor(url?: string, options?: RelayClientOptions);
  readonly url: string;
  readonly token: string | null;
  readonly state: ConnectionState;
  readonly welcome: WelcomeMessage | null;
  setToken(token: string | null): void;
  /** Resolves with the next welcome; rejects when the connection stops for good (4401). */
  connect(): Promise<WelcomeMessage>;
  close(): void;
  pair(code: string): Promise<{ till: string; token: string }>;
  pay(request: PayRequest): PaymentHandle;
  get(id: string): Promise<TransactionRecord>;
  resolve(id: string, outcome: "approved" | "not_charged", note?: string): Promise<TransactionRecord>;
  cancel(id: string): Promise<TransactionRecord>;
  watch(terminal: string): void;
  terminals(): Promise<TerminalInfo[]>;
  status(): Promise<StatusMessage>;
  /** Operator only: searches the LAN for terminals, one search a minute per agent (else
   * `rate_limited`, the message giving the seconds left); resolves when the sweep ends. */
  discover(options?: { subnet?: string; port?: number }): Promise<DiscoveredMessage>;
  on<K extends keyof RelayClientEventMap>(type: K, callback: (detail: RelayClientEventMap[K]["detail"]) => void): () => void;
  addEventListener<K extends keyof RelayClientEventMap>(
    type: K,
    listener: (event: RelayClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}
