/**
 * Demo point-of-sale page (`/`): amount keypad, terminal picker, live timeline, result card,
 * resolution of unknown results, recent transactions of this till.
 *
 * Test hooks (data-testid), besides those of common.js:
 *   till-name                       till name from the welcome
 *   logout-button                   forgets the token
 *   error-banner                    agent errors (busy terminal, too late, ...)
 *   amount-display                  data-amount = amount in minor units
 *   keypad-0 … keypad-9, keypad-00, keypad-back, keypad-clear
 *   terminal-picker                 fieldset; options terminal-option-<name> (radio, data-state idle|busy|unreachable)
 *   action-debit, action-refund, method-card, method-check, method-ancv   radios
 *   ticket-cb, ticket-print                  the terminal's ticket after a payment, its print button
 *   pay-button                      starts the payment (also Enter on the keyboard)
 *   progress                        the current payment panel; payment-id its id
 *   progress-sub                    current state text
 *   timeline-step-sent, timeline-step-waiting_card, timeline-step-result
 *                                   data-state = todo|active|done|skipped; <time> holds the hour
 *   cancel-button                   visible while the request has not reached the terminal
 *   result-card                     data-state = approved|partial|declined|not_sent|unknown|resolved|duplicate|error
 *   resolve-approved, resolve-not-charged, resolve-note   on an unresolved unknown result
 *   resolve-before                  on it, when a payment waits for that check (unresolved_unknown)
 *   duplicate-confirm, duplicate-cancel, duplicate-previous   the possible-duplicate dialog
 *   refund-of                       fieldset of this till's approved payments (refund);
 *                                   options refund-of-<id>, refund-of-none
 *   retry-button, new-payment-button, collect-rest-button
 *   recent-list                     rows recent-<id> (buttons), data-state = the record's state
 *
 * Keyboard: digits type the amount (in cents), Backspace deletes, Escape clears, Enter pays
 * (also when focus sits on a keypad key, e.g. after « Nouveau paiement »).
 *
 * Safety guards (api.md §10): a `pay` refused with `unresolved_unknown` opens the check of
 * the pending payment, and once it is resolved the payment typed is sent; one refused with
 * `possible_duplicate` asks to confirm, naming the earlier payment; a refund is linked to
 * the payment chosen in the list of this till's approved payments (those this page has
 * seen: since it connected, plus the last 10 minutes' replay).
 */
import { RelayClient, isFinal } from "/client.js";
import {
  addStrings, applyStrings, errorText, formatAmount, formatTime,
  h, needsCheck, onLangChange, pageSocketUrl, setupPage, statePill, Store, t,
} from "/common.js";

addStrings({
  "pos.brand": ["Caisse", "Till"],
  "pos.amount": ["Montant", "Amount"],
  "pos.keypad": ["Pavé numérique", "Keypad"],
  "pos.back": ["Effacer un chiffre", "Delete a digit"],
  "pos.clear": ["Effacer", "Clear"],
  "pos.keyboardHint": ["Clavier : chiffres, ⌫ pour corriger, Échap pour effacer, Entrée pour encaisser.", "Keyboard: digits, ⌫ to correct, Esc to clear, Enter to charge."],
  "pos.setup": ["Paiement", "Payment"],
  "pos.terminal": ["Terminal", "Terminal"],
  "pos.operation": ["Opération", "Operation"],
  "pos.method": ["Moyen de paiement", "Payment method"],
  "pos.noTerminal": ["Aucun terminal disponible pour cette caisse.", "No terminal available for this till."],
  "pos.pay.debit": ["Encaisser {amount}", "Charge {amount}"],
  "pos.pay.refund": ["Rembourser {amount}", "Refund {amount}"],
  "pos.pay.empty": ["Saisissez un montant", "Enter an amount"],
  "pos.title.debit": ["Paiement de {amount}", "Payment of {amount}"],
  "pos.title.refund": ["Remboursement de {amount}", "Refund of {amount}"],
  "pos.step.sent": ["Envoyé au terminal", "Sent to terminal"],
  "pos.step.waiting_card": ["En attente de la carte", "Waiting for card"],
  "pos.step.result": ["Résultat", "Result"],
  "pos.waiting_check": ["En attente du chèque", "Waiting for cheque"],
  "pos.sub.pending": ["Envoi de la demande à l'agent…", "Sending the request to the agent…"],
  "pos.sub.accepted": ["Demande acceptée par l'agent…", "Request accepted by the agent…"],
  "pos.sub.connecting": ["Connexion au terminal…", "Connecting to the terminal…"],
  "pos.sub.sent": ["Demande transmise au terminal.", "Request sent to the terminal."],
  "pos.sub.waiting_card": ["Le client peut présenter sa carte sur le terminal. Pour annuler : touche rouge du terminal.", "The customer can present their card on the terminal. To cancel: the terminal's red key."],
  "pos.sub.waiting_check": ["Insérez le chèque dans le terminal. Pour annuler : touche rouge du terminal.", "Insert the cheque into the terminal. To cancel: the terminal's red key."],
  "pos.sub.final": ["Terminé à {time}.", "Finished at {time}."],
  "pos.sub.offline": ["Connexion à l'agent perdue : le paiement continue sur le terminal, son résultat s'affichera dès la reconnexion. Ne relancez pas.", "Connection to the agent lost: the payment goes on at the terminal and its result will show on reconnect. Do not retry."],
  "pos.cancel": ["Annuler", "Cancel"],
  "pos.recent": ["Transactions récentes", "Recent transactions"],
  "pos.noRecent": ["Aucune transaction récente.", "No recent transactions."],
  "pos.approved.debit": ["Paiement accepté", "Payment approved"],
  "pos.approved.refund": ["Remboursement accepté", "Refund approved"],
  "pos.partial": ["Paiement partiel accepté", "Partial payment approved"],
  "pos.partial.approved": ["Accepté : {amount}", "Approved: {amount}"],
  "pos.partial.rest": ["Reste à encaisser : {amount}", "Still to collect: {amount}"],
  "pos.collectRest": ["Encaisser le reste", "Collect the rest"],
  "pos.card": ["Carte", "Card"],
  "pos.ticket": ["Ticket CB", "Card ticket"],
  "pos.ticket.customer": ["Ticket CB — client", "Card ticket — customer"],
  "pos.ticket.merchant": ["Ticket CB — commerçant", "Card ticket — merchant"],
  "pos.ticket.print": ["Imprimer le ticket", "Print the ticket"],
  "pos.pan": ["N° de carte", "Card number"],
  "pos.auth": ["N° d'autorisation", "Authorization no."],
  "pos.declined": ["Paiement refusé", "Payment declined"],
  "pos.declined.refund": ["Remboursement refusé", "Refund declined"],
  "pos.reason": ["Motif", "Reason"],
  "pos.not_sent": ["Non envoyé — vous pouvez réessayer", "Not sent — you can try again"],
  "pos.not_sent.detail": ["La demande n'a pas atteint le terminal : rien n'a été débité.", "The request never reached the terminal: nothing was charged."],
  "pos.not_sent.cancelled": ["Paiement annulé avant son envoi au terminal : rien n'a été débité.", "Payment cancelled before it was sent to the terminal: nothing was charged."],
  "pos.tech": ["Détail technique : {detail}", "Technical detail: {detail}"],
  "pos.unknown": ["Résultat inconnu — NE PAS relancer : vérifiez le ticket du terminal", "Result unknown — DO NOT retry: check the terminal's ticket"],
  "pos.unknown.check": ["Sur le ticket ou le journal du terminal, vérifiez :", "On the terminal's ticket or journal, check:"],
  "pos.unknown.amount": ["le montant : {amount}", "the amount: {amount}"],
  "pos.unknown.time": ["l'heure : vers {time}", "the time: around {time}"],
  "pos.unknown.auth": ["le n° d'autorisation imprimé (s'il y en a un, le paiement est passé)", "the authorization number (if one is printed, the payment went through)"],
  "pos.unknown.why": ["Cause technique : {reason}", "Technical cause: {reason}"],
  "pos.resolve.approved": ["Le ticket indique PAYÉ", "The ticket says PAID"],
  "pos.resolve.not_charged": ["Rien n'a été débité", "Nothing was charged"],
  "pos.resolve.note": ["Note (facultatif)", "Note (optional)"],
  "pos.resolved.approved": ["Vérifié : le ticket indique PAYÉ", "Checked: the ticket says PAID"],
  "pos.resolved.not_charged": ["Vérifié : rien n'a été débité", "Checked: nothing was charged"],
  "pos.resolved.by": ["Décision de {till} à {time}.", "Decided by {till} at {time}."],
  "pos.resolved.note": ["Note : {note}", "Note: {note}"],
  "pos.retry": ["Réessayer", "Try again"],
  "pos.new": ["Nouveau paiement", "New payment"],
  "pos.error": ["La demande a été refusée par l'agent", "The agent refused the request"],
  "pos.displayRole": ["Cette caisse est en mode affichage : elle ne peut pas encaisser.", "This till is a display: it cannot take payments."],
  "pos.before": ["Avant d'encaisser {amount}, vérifiez ce paiement précédent : le terminal attend votre décision.", "Before charging {amount}, check this earlier payment: the terminal waits for your decision."],
  "pos.duplicate": ["Paiement identique il y a un instant", "Same payment a moment ago"],
  "pos.duplicate.previous": ["{amount} encaissé à {time} sur {terminal} ({id}).", "{amount} charged at {time} on {terminal} ({id})."],
  "pos.duplicate.ask": ["Le client paie-t-il vraiment une deuxième fois ?", "Is the customer really paying a second time?"],
  "pos.duplicate.confirm": ["Oui, encaisser de nouveau {amount}", "Yes, charge {amount} again"],
  "pos.duplicate.cancel": ["Non, annuler", "No, cancel"],
  "pos.refundOf": ["Paiement à rembourser", "Payment to refund"],
  "pos.refundOf.none": ["Sans paiement d'origine", "No original payment"],
  "pos.refundOf.left": ["reste {amount}", "{amount} left"],
});

const CURRENCY = "EUR";
const MAX_DIGITS = 12;
const RECENT_LIMIT = 30;
const $ = (id) => document.getElementById(id);

const store = new Store("pos");
const client = new RelayClient(pageSocketUrl(), { idPrefix: "pos" });
const records = new Map(); // this till's records by id
let digits = "";
let terminals = [];
let current = null; // {id, request, handle?, record?, error?, times: {}}

const page = setupPage(client, store, { signedIn: () => showPos(true), signedOut: () => showPos(false) });

// ---- connection -------------------------------------------------------------------------

function showPos(shown) {
  $("pos").hidden = !shown;
  $("logout-button").hidden = !shown;
}

client.on("state", () => {
  if (current) renderProgress();
  renderPayButton();
});

client.on("welcome", (welcome) => {
  $("till-name").textContent = welcome.till;
  $("error-banner").hidden = true;
  render();
});

client.on("terminals", (list) => {
  terminals = list;
  renderTerminals();
});

// Another till's record arrives only as the payment blocking this till's terminal
// (unresolved_unknown): shown while it is checked, never listed.
client.on("transaction", (record) => {
  const mine = !client.welcome || record.till === client.welcome.till;
  if (mine) records.set(record.id, record);
  if (current?.id === record.id) updateCurrent(record);
  else if (mine && !current && needsAttention(record)) showRecord(record);
  renderRecent();
});

$("logout-button").addEventListener("click", () => {
  records.clear();
  current = null;
  $("till-name").textContent = "";
  page.signOut();
});

setInterval(() => {
  if (client.state === "authenticated") client.terminals().catch(() => {});
}, 15_000);

// A payment still running or an unknown result left unresolved takes over the panel on load.
function needsAttention(record) {
  return !isFinal(record.state) || needsCheck(record);
}

// ---- amount entry -------------------------------------------------------------------------

function amountMinor() {
  return digits ? Number.parseInt(digits, 10) : 0;
}

function pressKey(key) {
  if (current) return;
  if (key === "back") digits = digits.slice(0, -1);
  else if (key === "clear") digits = "";
  else digits = (digits + key).replace(/^0+/, "").slice(0, MAX_DIGITS);
  renderAmount();
}

$("keypad").addEventListener("click", (event) => {
  const key = event.target.closest("[data-key]")?.dataset.key;
  if (key) pressKey(key);
});

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || $("pos").hidden) return;
  const target = event.target instanceof Element ? event.target : document.body;
  if (target.matches("input:not([type=radio]), textarea, select")) return;
  if (/^[0-9]$/.test(event.key)) pressKey(event.key);
  else if (event.key === "Backspace") pressKey("back");
  else if (event.key === "Escape" && !current) pressKey("clear");
  // A focused keypad key must not swallow Enter (its click would type the digit again).
  else if (event.key === "Enter" && (!target.matches("button") || target.closest("#keypad"))) startPayment();
  else return;
  event.preventDefault();
});

function renderAmount() {
  const display = $("amount-display");
  display.textContent = formatAmount(amountMinor(), CURRENCY);
  display.dataset.amount = String(amountMinor());
  renderPayButton();
}

// ---- terminals and options --------------------------------------------------------------

let renderedTerminals = "";

// Rebuilt only when the list changes, so keyboard focus on a radio survives refreshes.
function renderTerminals() {
  const signature = JSON.stringify([terminals.map((term) => [term.name, term.state]), document.documentElement.lang]);
  if (signature === renderedTerminals) return renderPayButton();
  renderedTerminals = signature;
  const picker = $("terminal-picker");
  const legend = picker.querySelector("legend");
  const chosen = selectedTerminal() ?? store.get("terminal");
  picker.replaceChildren(legend);
  if (!terminals.length) picker.append(h("p", { class: "empty" }, t("pos.noTerminal")));
  const fallback = terminals.find((term) => term.name === chosen) ?? terminals[0];
  for (const term of terminals) {
    const input = h("input", {
      type: "radio", name: "terminal", value: term.name, "data-testid": `terminal-option-${term.name}`,
      "data-state": term.state, checked: term === fallback,
    });
    picker.append(h("label", { class: "choice" }, input,
      h("span", {}, term.name, h("span", { class: "pill", "data-state": term.state }, t(`term.${term.state}`)))));
  }
  renderPayButton();
}

function selectedTerminal() {
  return document.querySelector("input[name=terminal]:checked")?.value ?? null;
}

function option(name) {
  return document.querySelector(`input[name=${name}]:checked`).value;
}

document.addEventListener("change", (event) => {
  if (event.target.name === "terminal") store.set("terminal", event.target.value);
  if (event.target.name === "action") renderRefundOf();
  if (event.target.name === "refund_of") useRefundOf();
  renderPayButton();
});

// ---- linked refunds ----------------------------------------------------------------------

/** This till's approved debits, newest first, with what is left to refund of each. */
function refundable() {
  const all = [...records.values()];
  const refunded = (id) => all
    .filter((r) => r.refund_of === id && (!isFinal(r.state) || r.state === "approved" ||
      (r.state === "unknown" && r.resolution?.outcome !== "not_charged")))
    .reduce((sum, r) => sum + r.amount, 0);
  return all
    .filter((r) => r.action === "debit" && (r.state === "approved" || r.resolution?.outcome === "approved"))
    .map((r) => ({ record: r, left: (r.result?.approved_amount ?? r.amount) - refunded(r.id) }))
    .filter(({ left }) => left > 0)
    .sort((a, b) => b.record.created_at.localeCompare(a.record.created_at))
    .slice(0, RECENT_LIMIT);
}

let renderedRefunds = "";

// Shown when "refund" is chosen; the newest payment is picked and its amount typed.
function renderRefundOf() {
  const box = $("refund-of");
  const refund = option("action") === "refund";
  box.hidden = !refund;
  if (!refund) { renderedRefunds = ""; return; }
  const payments = refundable();
  const signature = JSON.stringify([payments.map(({ record, left }) => [record.id, left]), document.documentElement.lang]);
  if (signature === renderedRefunds) return;
  const fresh = renderedRefunds === "";
  renderedRefunds = signature;
  const chosen = fresh ? payments[0]?.record.id ?? "" : selectedRefundOf() ?? "";
  const choice = (value, label) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "refund_of", value, "data-testid": `refund-of-${value || "none"}`, checked: value === chosen }),
    label);
  box.replaceChildren(h("legend", {}, t("pos.refundOf")),
    h("div", { class: "refund-list" },
      ...payments.map(({ record, left }) => choice(record.id, h("span", {},
        h("span", {}, `${formatTime(record.created_at)} · ${formatAmount(record.amount, record.currency)}`),
        h("span", { class: "num muted" }, t("pos.refundOf.left", { amount: formatAmount(left, record.currency) }))))),
      choice("", h("span", {}, t("pos.refundOf.none")))));
  if (fresh) useRefundOf();
}

function selectedRefundOf() {
  return document.querySelector("input[name=refund_of]:checked")?.value ?? null;
}

// Choosing a payment types what is left of it (the cashier may lower it).
function useRefundOf() {
  const id = selectedRefundOf();
  const found = refundable().find(({ record }) => record.id === id);
  if (found && !current) { digits = String(found.left); renderAmount(); }
}

function renderPayButton() {
  const button = $("pay-button");
  const amount = amountMinor();
  const cashier = client.welcome?.role !== "display";
  button.textContent = amount
    ? t(`pos.pay.${option("action")}`, { amount: formatAmount(amount, CURRENCY) })
    : t("pos.pay.empty");
  button.disabled = !amount || !selectedTerminal() || !cashier || client.state !== "authenticated" || Boolean(current);
  if (client.welcome && !cashier) showBanner(t("pos.displayRole"));
}

// ---- payment ------------------------------------------------------------------------------

$("pay-button").addEventListener("click", () => startPayment());

function startPayment(request) {
  if (!request && $("pay-button").disabled) return;
  const fields = request ?? {
    terminal: selectedTerminal(), amount: amountMinor(), currency: CURRENCY,
    action: option("action"), method: option("method"),
    ...(option("action") === "refund" && selectedRefundOf() ? { refundOf: selectedRefundOf() } : {}),
  };
  $("error-banner").hidden = true;
  const handle = client.pay(fields);
  current = { id: handle.id, request: handle.request, fields, handle, record: null, error: null, times: {} };
  handle.result.catch((error) => {
    if (current?.id !== handle.id) return;
    if (error.code === "unresolved_unknown") return checkFirst(error.pending, fields);
    current.error = error;
    if (error.code === "possible_duplicate") {
      client.get(error.previous).then((previous) => { current.previous = previous; render(); }).catch(() => {});
    }
    render();
  });
  render();
  $("progress").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function showRecord(record) {
  current = { id: record.id, request: record, handle: null, record: null, error: null, times: {} };
  updateCurrent(record);
}

// unresolved_unknown: the check of the pending payment first, then the payment typed.
async function checkFirst(pending, fields) {
  try {
    const record = await client.get(pending);
    showRecord(record);
    current.after = fields;
    render();
  } catch (error) {
    current.error = error;
    render();
  }
}

// Each step lights up with the time it was first seen; a jump (re-attach after reload)
// marks the skipped steps done without a time.
function updateCurrent(record) {
  const times = current.times;
  const at = record.updated_at;
  if (["sent", "waiting_card"].includes(record.state)) times[record.state] ??= at;
  if (isFinal(record.state)) times.result ??= at;
  current.record = record;
  if (record.resolution && current.after) {
    const next = current.after;
    current = null;
    return startPayment(next);
  }
  render();
  if (isFinal(record.state)) client.terminals().catch(() => {});
}

$("cancel-button").addEventListener("click", async () => {
  if (!current) return;
  try {
    await client.cancel(current.id);
  } catch (error) {
    showBanner(error);
  }
});

function showBanner(message) {
  if (typeof message !== "string") message = errorText(message);
  const banner = $("error-banner");
  banner.textContent = message;
  banner.hidden = false;
}

function finish(clearAmount = true) {
  current = null;
  if (clearAmount) digits = "";
  render();
  ($("pay-button").disabled ? $("keypad").querySelector("button") : $("pay-button")).focus();
}

// ---- rendering ----------------------------------------------------------------------------

function render() {
  $("keypad").querySelectorAll("button").forEach((b) => { b.disabled = Boolean(current); });
  $("setup").hidden = Boolean(current);
  $("pos").classList.toggle("paying", Boolean(current));
  $("progress").hidden = !current;
  renderAmount();
  renderTerminals();
  renderRefundOf();
  if (current) renderProgress();
  renderRecent();
}

function renderProgress() {
  const { request, record, error, times } = current;
  const state = error ? "error" : record?.state ?? "pending";
  $("progress-title").textContent = t(`pos.title.${request.action}`, { amount: formatAmount(request.amount, request.currency) });
  $("progress-id").textContent = current.id;
  const waitingKey = request.method === "check" ? "pos.waiting_check" : "pos.step.waiting_card";
  $("timeline").querySelector("[data-step=waiting_card] .step-label").textContent = t(waitingKey);
  renderSteps(state, times);
  $("progress-sub").textContent = subtitle(state, request);
  $("progress-sub").classList.toggle("offline", !isFinal(state) && state !== "error" && client.state !== "authenticated");
  $("cancel-button").hidden = !["pending", "accepted", "connecting"].includes(state);
  renderResult(state);
}

function subtitle(state, request) {
  if (state === "error") return "";
  if (!isFinal(state) && client.state !== "authenticated") return t("pos.sub.offline");
  if (isFinal(state)) return t("pos.sub.final", { time: formatTime(current.times.result) });
  if (state === "waiting_card" && request.method === "check") return t("pos.sub.waiting_check");
  return t(`pos.sub.${state}`);
}

// data-state: active while the agent is in that phase, done once passed, skipped only when
// the request provably never reached the terminal (not_sent).
function stepStates(state, times) {
  const final = isFinal(state);
  if (state === "error") return { sent: "todo", waiting_card: "todo", result: "todo" };
  if (state === "not_sent") return { sent: "skipped", waiting_card: "skipped", result: "done" };
  const sending = ["pending", "accepted", "connecting"].includes(state);
  return {
    sent: sending ? "active" : "done",
    waiting_card: state === "waiting_card" ? "active" : final ? "done" : "todo",
    result: final ? "done" : "todo",
  };
}

function renderSteps(state, times) {
  const states = stepStates(state, times);
  for (const [step, stepState] of Object.entries(states)) {
    const li = $("timeline").querySelector(`[data-step=${step}]`);
    li.dataset.state = stepState;
    if (step === "result") li.dataset.result = isFinal(state) ? state : "";
    const time = times[step];
    const shown = time && stepState !== "todo" && stepState !== "skipped";
    li.querySelector("time").textContent = shown ? formatTime(time) : "";
    li.querySelector("time").dateTime = shown ? time : "";
  }
}

function renderResult(state) {
  const card = $("result-card");
  const view = resultView(state);
  card.hidden = !view;
  if (!view) return;
  card.dataset.state = view.state;
  card.dataset.outcome = current.record?.resolution?.outcome ?? "";
  card.replaceChildren(...view.children.filter(Boolean), h("div", { class: "result-actions" }, ...view.actions));
}

function resultView(state) {
  const record = current.record;
  switch (state) {
    case "approved": return record.result?.partial ? partialView(record) : approvedView(record);
    case "declined": return declinedView(record);
    case "not_sent": return notSentView(record);
    case "unknown": return record.resolution ? resolvedView(record) : unknownView(record);
    case "error": return current.error.code === "possible_duplicate" ? duplicateView() : errorView(current.error);
    default: return null;
  }
}

function cardDetails(record) {
  const card = record.result?.card ?? {};
  const rows = [
    [t("pos.card"), card.application],
    [t("pos.pan"), card.pan],
    [t("pos.auth"), record.result?.authorization],
  ].filter(([, value]) => value);
  return h("dl", { class: "details" }, rows.map(([label, value]) => [h("dt", {}, label), h("dd", { class: "num" }, value)]));
}

// The terminal's tickets (result.ticket), as text; printed alone at receipt width (pos.css).
function ticketView(record) {
  const tickets = record.result?.ticket ?? [];
  if (!tickets.length) return null;
  const print = h("button", { type: "button", class: "btn ticket-print", "data-testid": "ticket-print", onclick: () => window.print() }, t("pos.ticket.print"));
  return h("section", { class: "ticket-cb", "data-testid": "ticket-cb" },
    tickets.map((ticket) => [h("h4", {}, t(ticket.kind ? `pos.ticket.${ticket.kind}` : "pos.ticket")), h("pre", { class: "ticket-text" }, ticket.text)]),
    print);
}

function newButton() {
  return h("button", { type: "button", class: "btn btn-primary", "data-testid": "new-payment-button", onclick: () => finish() }, t("pos.new"));
}

function retryButton() {
  const { terminal, amount, currency, action, method, refund_of: refundOf } = current.request;
  return h("button", {
    type: "button", class: "btn", "data-testid": "retry-button",
    onclick: () => { current = null; startPayment({ terminal, amount, currency, action, method, refundOf }); },
  }, t("pos.retry"));
}

function approvedView(record) {
  return {
    state: "approved",
    children: [h("h3", {}, t(`pos.approved.${record.action}`)),
      h("p", { class: "result-amount num" }, formatAmount(record.amount, record.currency)), cardDetails(record), ticketView(record)],
    actions: [newButton()],
  };
}

function partialView(record) {
  const approved = record.result.approved_amount ?? 0;
  const rest = record.amount - approved;
  const collect = h("button", {
    type: "button", class: "btn btn-primary", "data-testid": "collect-rest-button",
    onclick: () => { digits = String(rest); finish(false); },
  }, t("pos.collectRest"));
  return {
    state: "partial",
    children: [h("h3", {}, t("pos.partial")),
      h("p", { class: "result-amount num" }, t("pos.partial.approved", { amount: formatAmount(approved, record.currency) })),
      h("p", { class: "rest num", "data-testid": "rest-due" }, t("pos.partial.rest", { amount: formatAmount(rest, record.currency) })),
      cardDetails(record)],
    actions: [collect, h("button", { type: "button", class: "btn", "data-testid": "new-payment-button", onclick: () => finish() }, t("pos.new"))],
  };
}

function declinedView(record) {
  const result = record.result ?? {};
  const label = result.label ?? result.reason ?? "";
  const english = document.documentElement.lang === "en" && result.reason ? ` (${result.reason})` : "";
  return {
    state: "declined",
    children: [h("h3", {}, t(record.action === "refund" ? "pos.declined.refund" : "pos.declined")),
      h("p", { class: "result-reason", "data-testid": "result-reason" },
        `${t("pos.reason")} : ${label}${english}${result.af ? ` — AF ${result.af}` : ""}`), ticketView(record)],
    actions: [retryButton(), newButton()],
  };
}

// The agent's detail is technical English (a socket error): labelled and kept small.
function notSentView(record) {
  const detail = record.result?.detail;
  const cancelled = detail === "cancelled";
  return {
    state: "not_sent",
    children: [h("h3", {}, t("pos.not_sent")), h("p", {}, t(cancelled ? "pos.not_sent.cancelled" : "pos.not_sent.detail")),
      detail && !cancelled ? h("p", { class: "muted tech" }, t("pos.tech", { detail })) : null],
    actions: [retryButton(), newButton()],
  };
}

function unknownView(record) {
  const reason = record.result?.reason;
  const then = current.after;
  const note = h("input", { type: "text", id: "resolve-note", "data-testid": "resolve-note", maxlength: 200, autocomplete: "off" });
  const resolve = (outcome) => async () => {
    try {
      await client.resolve(record.id, outcome, note.value.trim() || undefined);
    } catch (error) {
      showBanner(error);
    }
  };
  return {
    state: "unknown",
    children: [
      then ? h("p", { class: "before", "data-testid": "resolve-before" },
        t("pos.before", { amount: formatAmount(then.amount, then.currency) })) : null,
      h("h3", {}, t("pos.unknown")),
      h("p", {}, t("pos.unknown.check")),
      h("ul", { class: "checklist" },
        h("li", {}, t("pos.unknown.amount", { amount: formatAmount(record.amount, record.currency) })),
        h("li", {}, t("pos.unknown.time", { time: formatTime(record.updated_at) })),
        h("li", {}, t("pos.unknown.auth"))),
      reason ? h("p", { class: "muted small" }, t("pos.unknown.why", { reason: t(`reason.${reason}`) })) : null,
      h("label", { class: "field note" }, h("span", {}, t("pos.resolve.note")), note),
    ],
    actions: [
      h("button", { type: "button", class: "btn btn-ok", "data-testid": "resolve-approved", onclick: resolve("approved") }, t("pos.resolve.approved")),
      h("button", { type: "button", class: "btn btn-danger", "data-testid": "resolve-not-charged", onclick: resolve("not_charged") }, t("pos.resolve.not_charged")),
    ],
  };
}

function resolvedView(record) {
  const { outcome, till, at, note } = record.resolution;
  return {
    state: "resolved",
    children: [h("h3", {}, t(`pos.resolved.${outcome}`)),
      h("p", { class: "result-amount num" }, formatAmount(record.amount, record.currency)),
      h("p", { class: "muted" }, t("pos.resolved.by", { till, time: formatTime(at) })),
      note ? h("p", {}, t("pos.resolved.note", { note })) : null],
    actions: outcome === "not_charged" ? [retryButton(), newButton()] : [newButton()],
  };
}

// possible_duplicate: the same payment again only if the cashier says so (same id: the
// refused pay left nothing behind).
function duplicateView() {
  const { fields, previous, id } = current;
  const amount = formatAmount(fields.amount, fields.currency);
  const earlier = previous ? t("pos.duplicate.previous", {
    amount: formatAmount(previous.amount, previous.currency), time: formatTime(previous.updated_at),
    terminal: previous.terminal, id: previous.id,
  }) : current.error.previous;
  return {
    state: "duplicate",
    children: [h("h3", {}, t("pos.duplicate")), h("p", { "data-testid": "duplicate-previous" }, earlier),
      h("p", {}, t("pos.duplicate.ask"))],
    actions: [
      h("button", {
        type: "button", class: "btn btn-primary", "data-testid": "duplicate-confirm",
        onclick: () => { current = null; startPayment({ ...fields, id, confirmDuplicate: true }); },
      }, t("pos.duplicate.confirm", { amount })),
      h("button", { type: "button", class: "btn", "data-testid": "duplicate-cancel", onclick: () => finish() }, t("pos.duplicate.cancel")),
    ],
  };
}

function errorView(error) {
  return {
    state: "error",
    children: [h("h3", {}, t("pos.error")), h("p", { "data-testid": "error-message" }, errorText(error)),
      h("p", { class: "muted small num" }, error.code + (error.id ? ` — ${error.id}` : ""))],
    actions: [newButton()],
  };
}

function renderRecent() {
  const list = $("recent-list");
  const rows = [...records.values()]
    .sort((a, b) => b.created_at.localeCompare(a.created_at))
    .slice(0, RECENT_LIMIT);
  $("recent-empty").hidden = rows.length > 0;
  list.replaceChildren(...rows.map((record) => {
    const toCheck = needsCheck(record);
    return h("li", {},
      h("button", {
        type: "button", class: `recent-row${toCheck ? " to-check" : ""}`, "data-testid": `recent-${record.id}`,
        "data-state": record.state, disabled: Boolean(current) && current.id !== record.id,
        onclick: () => { if (!current) showRecord(record); },
      },
      h("span", { class: "num recent-time" }, formatTime(record.created_at)),
      h("span", { class: "num recent-amount" }, `${record.action === "refund" ? "−" : ""}${formatAmount(record.amount, record.currency)}`),
      h("span", { class: "recent-meta muted" }, `${t(`method.${record.method}`)} · ${record.terminal}`),
      statePill(record)));
  }));
}

onLangChange(render);
applyStrings();

page.resume();
render();
