/**
 * Customer display (`/display`): watches one terminal and shows the amount, what to do and
 * the result in large type, then returns to "Bonjour" after a few seconds.
 * Set up once: pair with a code (or a token), pick the terminal; both are kept in
 * localStorage (never in the URL). "Changer de terminal" in the footer starts over, after a
 * confirmation (a customer may tap it).
 *
 * Only live news takes the screen: a finished record marked `replay` (the answer to
 * `watch`, e.g. after a restart or when the page opens) is an old result and leaves the
 * screen idle; a record that only adds details to a result already seen (same final state,
 * higher seq: card details, a resolution) updates the screen in place if that result is
 * still shown, and is ignored otherwise. No clock is compared.
 *
 * Test hooks (data-testid), besides those of common.js:
 *   terminal-choice                 first-time terminal picker; buttons terminal-choice-<name>
 *   display-screen                  data-state = idle|waiting|result, data-result = approved|partial|declined|not_sent|unknown
 *                                   data-id = the transaction shown
 *   display-kicker, display-title, display-amount, display-message   the texts
 *   display-terminal                watched terminal name
 *   display-reset                   forget the terminal (and the token) and set up again, after
 *   display-reset-confirm, display-reset-cancel   the confirmation
 */
import { RelayClient, isDetailUpdate, isFinal } from "/client.js";
import {
  addStrings, applyStrings, formatAmount, h,
  onLangChange, pageSocketUrl, setupPage, Store, t,
} from "/common.js";

addStrings({
  "display.pick": ["Quel terminal cet écran affiche-t-il ?", "Which terminal does this screen show?"],
  "display.pickIntro": ["Choix fait une seule fois ; il est mémorisé sur cet appareil.", "Chosen once; remembered on this device."],
  "display.reset": ["Changer de terminal", "Change terminal"],
  "display.terminal": ["Terminal {name}", "Terminal {name}"],
  "display.hello": ["Bonjour", "Hello"],
  "display.welcome": ["Bienvenue", "Welcome"],
  "display.debit": ["À payer", "To pay"],
  "display.refund": ["Remboursement", "Refund"],
  "display.wait": ["Un instant…", "One moment…"],
  "display.card": ["Présentez votre carte", "Present your card"],
  "display.check": ["Insérez votre chèque", "Insert your cheque"],
  "display.approved.debit": ["Paiement accepté", "Payment approved"],
  "display.approved.refund": ["Remboursement effectué", "Refund done"],
  "display.thanks": ["Merci !", "Thank you!"],
  "display.partial": ["Paiement partiel accepté", "Partial payment approved"],
  "display.partialRest": ["Reste à payer : {amount}", "Still to pay: {amount}"],
  "display.declined": ["Paiement refusé", "Payment declined"],
  "display.declinedHelp": ["Veuillez vous adresser à la caisse.", "Please ask at the till."],
  "display.not_sent": ["Paiement non effectué", "Payment not made"],
  "display.notSentHelp": ["Rien n'a été débité. Veuillez patienter.", "Nothing was charged. Please wait."],
  "display.unknown": ["Vérification en cours", "Checking"],
  "display.unknownHelp": ["Veuillez patienter, la caisse vérifie le paiement.", "Please wait, the cashier is checking the payment."],
  "display.resetAsk": ["Réservé au personnel : cet écran oubliera son appairage et son terminal.", "Staff only: this screen will forget its pairing and its terminal."],
  "display.resetConfirm": ["Oui, changer", "Yes, change"],
  "display.resetCancel": ["Annuler", "Cancel"],
});

const RESULT_MS = 8_000;
const $ = (id) => document.getElementById(id);
const store = new Store("display");
const client = new RelayClient(pageSocketUrl(), { idPrefix: "display" });
let shown = null; // the record on screen, or null for idle
let idleTimer = null;
const seen = new Map(); // id → the latest record seen of it (the last SEEN_LIMIT ids)
const SEEN_LIMIT = 50;

const page = setupPage(client, store, {
  signedIn() {
    const terminal = store.get("terminal");
    if (terminal) startWatching(terminal); // greet at once; watch is sent when connected
  },
  signedOut: () => showOnly("auth-panel"),
});

client.on("welcome", (welcome) => {
  const terminal = store.get("terminal");
  if (terminal && welcome.terminals.some((term) => term.name === terminal)) {
    if ($("screen").hidden) startWatching(terminal);
  } else {
    store.set("terminal", null);
    showPicker(welcome.terminals);
  }
});

client.on("transaction", (record) => {
  if (record.terminal !== store.get("terminal")) return;
  const before = seen.get(record.id);
  if (before && record.seq < before.seq) return;
  remember(record);
  const oldNews = isFinal(record.state) && (record.replay || isDetailUpdate(before, record));
  if (!oldNews) show(record);
  else if (shown?.id === record.id) { shown = record; render(); } // in place, same timer
});

function remember(record) {
  seen.delete(record.id);
  seen.set(record.id, record);
  if (seen.size > SEEN_LIMIT) seen.delete(seen.keys().next().value);
}

$("display-reset").addEventListener("click", () => { $("reset-ask").hidden = false; });
$("display-reset-cancel").addEventListener("click", () => { $("reset-ask").hidden = true; });
$("display-reset-confirm").addEventListener("click", () => {
  store.set("terminal", null);
  store.set("token", null);
  client.close();
  location.reload();
});

function showOnly(id) {
  for (const section of ["auth-panel", "picker", "screen"]) $(section).hidden = section !== id;
  $("display-reset").hidden = id !== "screen";
  $("reset-ask").hidden = true;
}

function showPicker(terminals) {
  showOnly("picker");
  $("picker-list").replaceChildren(...terminals.map((term) =>
    h("button", {
      type: "button", class: "btn", "data-testid": `terminal-choice-${term.name}`,
      onclick: () => { store.set("terminal", term.name); startWatching(term.name); },
    }, term.name, h("span", { class: "pill", "data-state": term.state }, t(`term.${term.state}`)))));
  $("picker-list").querySelector("button")?.focus();
}

function startWatching(terminal) {
  client.watch(terminal);
  $("display-terminal").textContent = t("display.terminal", { name: terminal });
  showOnly("screen");
  render();
}

// A final result stays for RESULT_MS after it arrives, then the screen greets the next customer.
function show(record) {
  shown = record;
  clearTimeout(idleTimer);
  if (isFinal(record.state)) {
    idleTimer = setTimeout(() => { shown = null; render(); }, RESULT_MS);
  }
  render();
}

function view(record) {
  if (!record) return { state: "idle", title: t("display.hello"), message: t("display.welcome") };
  const amount = formatAmount(record.amount, record.currency);
  const kicker = t(`display.${record.action}`);
  const waiting = { state: "waiting", kicker, amount };
  switch (record.state) {
    case "sent":
    case "waiting_card":
      return { ...waiting, message: t(record.method === "check" ? "display.check" : "display.card") };
    case "approved": return approvedView(record, amount);
    case "declined":
      return { state: "result", result: "declined", title: t("display.declined"), amount, message: t("display.declinedHelp") };
    case "not_sent":
      return { state: "result", result: "not_sent", title: t("display.not_sent"), amount, message: t("display.notSentHelp") };
    case "unknown": return unknownView(record, amount);
    default:
      return { ...waiting, message: t("display.wait") };
  }
}

// Once the cashier has checked the ticket, the customer sees what it said.
function unknownView(record, amount) {
  switch (record.resolution?.outcome) {
    case "approved": return approvedView(record, amount);
    case "not_charged":
      return { state: "result", result: "not_sent", title: t("display.not_sent"), amount, message: t("display.notSentHelp") };
    default:
      return { state: "result", result: "unknown", title: t("display.unknown"), amount, message: t("display.unknownHelp") };
  }
}

function approvedView(record, amount) {
  const result = record.result ?? {};
  if (result.partial) {
    const approved = result.approved_amount ?? 0;
    return {
      state: "result", result: "partial", title: t("display.partial"),
      amount: formatAmount(approved, record.currency),
      message: t("display.partialRest", { amount: formatAmount(record.amount - approved, record.currency) }),
    };
  }
  return { state: "result", result: "approved", title: t(`display.approved.${record.action}`), amount, message: t("display.thanks") };
}

function render() {
  const v = view(shown);
  const screen = $("screen");
  screen.dataset.state = v.state;
  screen.dataset.result = v.result ?? "";
  screen.dataset.id = shown?.id ?? "";
  for (const [id, text] of [["display-kicker", v.kicker], ["display-title", v.title], ["display-amount", v.amount], ["display-message", v.message]]) {
    $(id).textContent = text ?? "";
    $(id).hidden = !text;
  }
  $("display-amount").toggleAttribute("data-long", (v.amount ?? "").length > 10);
}

onLangChange(() => {
  render();
  const terminal = store.get("terminal");
  if (terminal) $("display-terminal").textContent = t("display.terminal", { name: terminal });
  if (!$("picker").hidden && client.welcome) showPicker(client.welcome.terminals);
});
applyStrings();

page.resume();
render();
