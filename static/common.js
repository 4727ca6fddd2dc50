/**
 * Shared helpers for the agent's own pages (/, /display, /status): French/English strings,
 * amount and time formatting, token storage, the connection badge and the sign-in form.
 * Not part of the public client API (that is client.js).
 *
 * Test hooks provided here (present on every page that uses them):
 *   data-testid="connection-status"  data-state = idle|connecting|open|authenticated|closed
 *   data-testid="lang-toggle"        button, data-lang = fr|en (the current language)
 *   data-testid="auth-form"          sign-in form (pairing code or token)
 *   data-testid="auth-code"          8-digit pairing code input
 *   data-testid="auth-token"         token input
 *   data-testid="auth-submit"        submit button
 *   data-testid="auth-error"         error message under the form
 */

const LANG_KEY = "caisse-ap-relay.lang";

const STRINGS = {
  fr: {
    "conn.idle": "Hors ligne",
    "conn.connecting": "Connexion…",
    "conn.open": "Authentification…",
    "conn.authenticated": "Connecté",
    "conn.closed": "Déconnecté",
    "conn.retry": "Déconnecté — nouvel essai dans {s} s",
    "conn.unauthorized": "Accès refusé : jeton invalide ou révoqué",
    "lang.switch": "English",
    "auth.title": "Connecter cette caisse",
    "auth.intro": "Saisissez le code d'appairage à 8 chiffres affiché par « caisse-ap-relay pair --till NOM », ou collez un jeton de caisse.",
    "auth.code": "Code d'appairage",
    "auth.or": "ou",
    "auth.token": "Jeton de caisse",
    "auth.submit": "Connecter",
    "auth.needOne": "Saisissez un code à 8 chiffres ou un jeton.",
    "auth.badCode": "Le code d'appairage compte 8 chiffres.",
    "auth.pairing": "Appairage en cours…",
    "auth.rejected": "Le jeton a été refusé. Appairez de nouveau cette caisse.",
    "auth.logout": "Déconnecter",
    "state.pending": "Envoi…",
    "state.accepted": "Accepté",
    "state.connecting": "Connexion au terminal",
    "state.sent": "Envoyé",
    "state.waiting_card": "En attente de la carte",
    "state.approved": "Accepté",
    "state.declined": "Refusé",
    "state.not_sent": "Non envoyé",
    "state.unknown": "Inconnu",
    "state.resolved_approved": "Payé (vérifié)",
    "state.resolved_not_charged": "Non débité (vérifié)",
    "state.toCheck": "À vérifier",
    "term.idle": "Libre",
    "term.busy": "Occupé",
    "term.unreachable": "Injoignable",
    "action.debit": "Paiement",
    "action.refund": "Remboursement",
    "method.card": "Carte",
    "method.check": "Chèque",
    "method.ancv": "Chèques-vacances ANCV",
    "err.generic": "Erreur",
    "err.bad_request": "Demande refusée par l'agent : elle est incomplète ou invalide.",
    "err.unauthorized": "Accès refusé : jeton invalide ou révoqué.",
    "err.forbidden": "Cette caisse n'a pas le droit de faire cela.",
    "err.unknown_terminal": "Terminal inconnu de l'agent.",
    "err.terminal_busy": "Le terminal est occupé par un autre paiement : attendez qu'il se termine.",
    "err.id_conflict": "Cet identifiant de paiement est déjà pris par un autre paiement.",
    "err.not_found": "Transaction introuvable pour cette caisse.",
    "err.too_late": "Trop tard : la demande a atteint le terminal. Annulez sur le terminal (touche rouge).",
    "err.rate_limited": "Trop d'essais : patientez une minute avant de réessayer.",
    "err.internal": "L'agent ne peut pas le faire pour l'instant ; rien n'a été envoyé. Réessayez dans un instant.",
    "err.unresolved_unknown": "Un paiement précédent sur ce terminal a une issue inconnue : vérifiez le ticket du terminal et indiquez le résultat avant d'encaisser.",
    "err.possible_duplicate": "Le même montant vient d'être encaissé sur ce terminal : confirmez seulement si le client paie vraiment deux fois.",
    "err.refund_exceeds": "Le remboursement dépasse ce qui reste à rembourser sur ce paiement.",
    "err.disconnected": "Connexion à l'agent perdue.",
    "err.closed": "Connexion à l'agent fermée.",
    "err.timeout": "L'agent n'a pas répondu à temps.",
    "err.pair.unauthorized": "Code d'appairage incorrect ou expiré : demandez un nouveau code (« caisse-ap-relay pair --till NOM »).",
    "err.pair.rate_limited": "Trop de codes erronés : patientez une minute avant de réessayer.",
    "reason.timeout": "le terminal n'a pas répondu à temps",
    "reason.connection_lost": "la connexion au terminal a été perdue",
    "reason.invalid_answer": "réponse illisible du terminal",
    "reason.mismatch": "la réponse ne correspond pas à la demande",
    "reason.agent_restart": "l'agent a redémarré pendant le paiement",
  },
  en: {
    "conn.idle": "Offline",
    "conn.connecting": "Connecting…",
    "conn.open": "Signing in…",
    "conn.authenticated": "Connected",
    "conn.closed": "Disconnected",
    "conn.retry": "Disconnected — retrying in {s} s",
    "conn.unauthorized": "Access denied: token invalid or revoked",
    "lang.switch": "Français",
    "auth.title": "Connect this till",
    "auth.intro": "Enter the 8-digit pairing code printed by “caisse-ap-relay pair --till NAME”, or paste a till token.",
    "auth.code": "Pairing code",
    "auth.or": "or",
    "auth.token": "Till token",
    "auth.submit": "Connect",
    "auth.needOne": "Enter an 8-digit code or a token.",
    "auth.badCode": "The pairing code has 8 digits.",
    "auth.pairing": "Pairing…",
    "auth.rejected": "The token was refused. Pair this till again.",
    "auth.logout": "Sign out",
    "state.pending": "Sending…",
    "state.accepted": "Accepted",
    "state.connecting": "Connecting to terminal",
    "state.sent": "Sent",
    "state.waiting_card": "Waiting for card",
    "state.approved": "Approved",
    "state.declined": "Declined",
    "state.not_sent": "Not sent",
    "state.unknown": "Unknown",
    "state.resolved_approved": "Paid (checked)",
    "state.resolved_not_charged": "Not charged (checked)",
    "state.toCheck": "To check",
    "term.idle": "Idle",
    "term.busy": "Busy",
    "term.unreachable": "Unreachable",
    "action.debit": "Payment",
    "action.refund": "Refund",
    "method.card": "Card",
    "method.check": "Cheque",
    "method.ancv": "ANCV holiday vouchers",
    "err.generic": "Error",
    "err.unresolved_unknown": "An earlier payment on this terminal has an unknown result: check the terminal's ticket and record the result before charging.",
    "err.possible_duplicate": "The same amount was just charged on this terminal: confirm only if the customer really pays twice.",
    "err.refund_exceeds": "The refund exceeds what is left to refund on this payment.",
    "reason.timeout": "the terminal did not answer in time",
    "reason.connection_lost": "the connection to the terminal was lost",
    "reason.invalid_answer": "unreadable answer from the terminal",
    "reason.mismatch": "the answer does not match the request",
    "reason.agent_restart": "the agent restarted during the payment",
  },
};

let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "fr";
let pageStrings = { fr: {}, en: {} };
const langListeners = [];

/** Current language, `fr` or `en`. */
export function currentLang() {
  return lang;
}

/**
 * Adds a page's own strings, each key with its French and English text side by side.
 * @param {Record<string, [string, string]>} strings
 */
export function addStrings(strings) {
  for (const [key, [fr, en]] of Object.entries(strings)) {
    pageStrings.fr[key] = fr;
    pageStrings.en[key] = en;
  }
}

/**
 * Translates a key, replacing `{name}` placeholders from `vars`.
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 */
export function t(key, vars = {}) {
  const text = pageStrings[lang][key] ?? STRINGS[lang][key] ?? pageStrings.fr[key] ?? STRINGS.fr[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/**
 * A {@link import("./client.js").RelayError} in the page's language: in French the text of
 * its code (`err.<request>.<code>` first, e.g. `err.pair.unauthorized`), in English the
 * agent's own message unless the page has a better one; the agent's message when no text
 * fits.
 * @param {{code?: string, message?: string, request?: string}} error
 * @returns {string}
 */
export function errorText(error) {
  const keys = [`err.${error.request}.${error.code}`, `err.${error.code}`];
  const own = (dict) => keys.map((key) => pageStrings[lang][key] ?? dict[key]).find(Boolean);
  if (lang === "fr") return own(STRINGS.fr) ?? error.message ?? t("err.generic");
  return own(STRINGS.en) ?? error.message ?? t("err.generic");
}

/** Fills every `[data-i18n]` element's text (and `[data-i18n-placeholder]`, `[data-i18n-label]`). */
export function applyStrings(root = document) {
  document.documentElement.lang = lang;
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.i18nLabel)));
}

/** Calls `callback` after every language change (and applies the static strings). */
export function onLangChange(callback) {
  langListeners.push(callback);
}

/** Wires the FR/EN toggle button (remembered in localStorage). @param {HTMLButtonElement} button */
function setupLangToggle(button) {
  const render = () => {
    button.textContent = lang === "fr" ? "EN" : "FR";
    button.dataset.lang = lang;
    button.setAttribute("aria-label", t("lang.switch"));
    button.title = t("lang.switch");
  };
  button.addEventListener("click", () => {
    lang = lang === "fr" ? "en" : "fr";
    localStorage.setItem(LANG_KEY, lang);
    applyStrings();
    render();
    langListeners.forEach((cb) => cb(lang));
  });
  applyStrings();
  render();
}

function locale() {
  return lang === "fr" ? "fr-FR" : "en-GB";
}

/** Minor-unit exponent of a currency (EUR 2, XPF 0), from the browser's ISO 4217 data. */
export function currencyExponent(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/**
 * Formats minor units as money in the current language: 1245 EUR → "12,45 €".
 * @param {number} minor
 * @param {string} currency ISO 4217 alpha
 */
export function formatAmount(minor, currency = "EUR") {
  const exponent = currencyExponent(currency);
  const major = minor / 10 ** exponent;
  try {
    return new Intl.NumberFormat(locale(), {
      style: "currency", currency, minimumFractionDigits: exponent, maximumFractionDigits: exponent,
    }).format(major);
  } catch {
    return `${major.toFixed(exponent)} ${currency}`;
  }
}

/** "14:03:27" in local time. @param {string | number | Date} when */
export function formatTime(when) {
  return new Date(when).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** "23/11/2026 14:03" in local time. @param {string | number | Date} when */
export function formatDateTime(when) {
  return new Date(when).toLocaleString(locale(), {
    day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

/** Label of a record's state, taking a resolution into account. */
export function stateLabel(record) {
  if (record.state === "unknown" && record.resolution) return t(`state.resolved_${record.resolution.outcome}`);
  return t(`state.${record.state}`);
}

/** True for an `unknown` record nobody has resolved yet: the cashier must check the terminal. */
export function needsCheck(record) {
  return record.state === "unknown" && !record.resolution;
}

/** The state pill of a record; a resolved `unknown` is coloured by its resolution. */
export function statePill(record) {
  const state = record.state === "unknown" && record.resolution ? `resolved_${record.resolution.outcome}` : record.state;
  return h("span", { class: "pill", "data-state": state }, needsCheck(record) ? t("state.toCheck") : stateLabel(record));
}

/** Creates an element: `h("p", {class: "x", "data-testid": "y"}, "text", child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

/** localStorage slot for a page's credentials. */
export class Store {
  /** @param {string} page e.g. "pos" */
  constructor(page) {
    this.prefix = `caisse-ap-relay.${page}.`;
  }
  /** @param {string} key */
  get(key) {
    return localStorage.getItem(this.prefix + key);
  }
  /** @param {string} key @param {string | null} value */
  set(key, value) {
    if (value === null) localStorage.removeItem(this.prefix + key);
    else localStorage.setItem(this.prefix + key, value);
  }
}

/** The agent's WebSocket URL for pages it serves itself (same origin). */
export function pageSocketUrl() {
  return `${location.protocol === "http:" ? "ws" : "wss"}://${location.host}/ws`;
}

/**
 * Keeps the connection badge in sync with the client.
 * @param {import("./client.js").RelayClient} client
 * @param {HTMLElement} badge
 */
function bindConnectionBadge(client, badge) {
  let last = { state: "idle" };
  let ticker = null;
  const render = () => {
    const { state, code, retryInMs, at } = last;
    badge.dataset.state = state;
    let text = t(`conn.${state}`);
    if (state === "closed" && code === 4401) text = t("conn.unauthorized");
    else if (state === "closed" && retryInMs) {
      text = t("conn.retry", { s: Math.max(0, Math.ceil((at + retryInMs - Date.now()) / 1000)) });
    }
    badge.querySelector(".badge-text").textContent = text;
    badge.title = text;
  };
  client.on("state", (detail) => {
    last = { ...detail, at: Date.now() };
    clearInterval(ticker);
    if (detail.state === "closed" && detail.retryInMs) ticker = setInterval(render, 500);
    render();
  });
  onLangChange(render);
  render();
}

/**
 * Wires a sign-in form (pairing code or token). Calls `onToken(token, till?)` once one is known.
 * @param {HTMLFormElement} form
 * @param {(token: string, till?: string) => void} onToken
 * @param {(code: string) => Promise<{till: string, token: string}>} pairWith
 * @returns {{show(message?: string): void, hide(): void}}
 */
function setupAuthForm(form, onToken, pairWith) {
  const code = form.querySelector("[data-testid=auth-code]");
  const token = form.querySelector("[data-testid=auth-token]");
  const error = form.querySelector("[data-testid=auth-error]");
  const submit = form.querySelector("[data-testid=auth-submit]");
  const say = (message) => { error.textContent = message ?? ""; error.hidden = !message; };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const digits = code.value.replace(/\s+/g, "");
    const pasted = token.value.trim();
    if (!digits && !pasted) return say(t("auth.needOne"));
    if (pasted) return onToken(pasted);
    if (!/^\d{8}$/.test(digits)) return say(t("auth.badCode"));
    submit.disabled = true;
    say(t("auth.pairing"));
    try {
      const paired = await pairWith(digits);
      code.value = "";
      say(null);
      onToken(paired.token, paired.till);
    } catch (err) {
      say(errorText(err));
    } finally {
      submit.disabled = false;
    }
  });
  return {
    show(message) {
      form.closest("[data-auth-panel]").hidden = false;
      say(message);
      (code.value ? token : code).focus();
    },
    hide() {
      form.closest("[data-auth-panel]").hidden = true;
      token.value = "";
      say(null);
    },
  };
}

/**
 * Wires what the three pages share: the sign-in panel, the language toggle and the
 * connection badge. A token (pasted, paired or saved) is stored and connects; a 4401 close
 * forgets it and asks again.
 * @param {import("./client.js").RelayClient} client
 * @param {Store} store
 * @param {{signedIn(): void, signedOut(): void}} page  shows or hides the page's own parts
 */
export function setupPage(client, store, page) {
  const $ = (id) => document.getElementById(id);
  $("auth-panel").innerHTML = authFormMarkup();
  setupLangToggle($("lang-toggle"));
  bindConnectionBadge(client, $("connection-status"));
  const useToken = (token) => {
    store.set("token", token);
    client.setToken(token);
    auth.hide();
    page.signedIn();
    client.connect().catch(() => {});
  };
  const auth = setupAuthForm($("auth-form"), useToken, (code) => client.pair(code));
  const askAgain = (message) => {
    page.signedOut();
    auth.show(message);
  };
  client.on("closed", (detail) => {
    if (detail.code !== 4401) return;
    store.set("token", null);
    askAgain(t("auth.rejected"));
  });
  return {
    /** Connects with the saved token, or asks for one. */
    resume() {
      const saved = store.get("token");
      if (saved) useToken(saved);
      else askAgain();
    },
    /** Closes the connection, forgets the token and asks for one, saying `message` if given. */
    signOut(message) {
      client.close();
      store.set("token", null);
      askAgain(message);
    },
  };
}

/** The sign-in form's markup. */
function authFormMarkup() {
  return `
  <form class="auth-form card" data-testid="auth-form" id="auth-form" novalidate>
    <h2 data-i18n="auth.title"></h2>
    <p class="muted" data-i18n="auth.intro"></p>
    <label class="field"><span data-i18n="auth.code"></span>
      <input data-testid="auth-code" id="auth-code" inputmode="numeric" autocomplete="one-time-code"
        maxlength="9" pattern="[0-9 ]*" placeholder="12345678"></label>
    <p class="or" data-i18n="auth.or"></p>
    <label class="field"><span data-i18n="auth.token"></span>
      <input data-testid="auth-token" id="auth-token" type="password" autocomplete="off" spellcheck="false"></label>
    <p class="auth-error" data-testid="auth-error" role="alert" hidden></p>
    <button class="btn btn-primary" type="submit" data-testid="auth-submit" data-i18n="auth.submit"></button>
  </form>`;
}
