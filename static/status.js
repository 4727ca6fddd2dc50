/**
 * Operator status page (`/status`): terminals, live and recent transactions (unresolved
 * `unknown` ones first and highlighted), connected tills, certificate expiry.
 * Needs an operator till (contract §7.3): an operator receives every till's records live and
 * the `status` overview every 10 s; any other till's token is refused here with a message
 * saying how to pair an operator.
 *
 * Test hooks (data-testid), besides those of common.js:
 *   agent-name, refreshed-at, logout-button, error-banner
 *   unresolved                      summary card shown while unknown results are unresolved (data-count)
 *   terminals-table                 rows terminal-row-<name>, data-state idle|busy|unreachable
 *   transactions-table              rows tx-row-<id>, data-state = record state, data-to-check when unresolved unknown
 *   tills-table                     rows till-row-<name>
 *   certificate                     data-state ok|soon|expired|unknown; cert-expiry, cert-fingerprint
 *   discovery                       the terminal search, data-state idle|running|done|refused;
 *                                   discover-subnet, discover-port, discover-button, discover-status,
 *                                   discover-results with items found-<address> (data-answer
 *                                   terminal|refused|no_answer|configured) holding found-block (TOML)
 */
import { RelayClient, isFinal } from "/client.js";
import {
  addStrings, applyStrings, formatAmount, formatDateTime,
  formatTime, h, needsCheck, onLangChange, pageSocketUrl, setupPage, statePill, Store, t,
} from "/common.js";

addStrings({
  "auth.title": ["Connecter la page d'état", "Connect the status page"],
  "auth.intro": [
    "Saisissez le code d'appairage à 8 chiffres affiché par « caisse-ap-relay pair --role operator --till NOM », ou collez un jeton d'opérateur.",
    "Enter the 8-digit pairing code printed by “caisse-ap-relay pair --role operator --till NAME”, or paste an operator token.",
  ],
  "auth.token": ["Jeton d'opérateur", "Operator token"],
  "status.brand": ["État de l'agent", "Agent status"],
  "status.terminals": ["Terminaux", "Terminals"],
  "status.transactions": ["Transactions en cours et récentes", "Live and recent transactions"],
  "status.tills": ["Caisses", "Tills"],
  "status.certificate": ["Certificat", "Certificate"],
  "status.fingerprint": ["Empreinte SHA-256", "SHA-256 fingerprint"],
  "status.unresolved": ["{n} transactions au résultat inconnu à vérifier", "{n} transactions with an unknown result to check"],
  "status.unresolved.one": ["1 transaction au résultat inconnu à vérifier", "1 transaction with an unknown result to check"],
  "status.unresolvedHelp": ["Le terminal a peut-être débité la carte. La caisse concernée doit vérifier le ticket du terminal puis indiquer « Le ticket indique PAYÉ » ou « Rien n'a été débité ».", "The terminal may have charged the card. The till concerned must check the terminal's ticket, then answer “The ticket says PAID” or “Nothing was charged”."],
  "status.col.name": ["Nom", "Name"],
  "status.col.address": ["Adresse", "Address"],
  "status.col.state": ["État", "State"],
  "status.col.current": ["Transaction en cours", "Current transaction"],
  "status.col.lastSeen": ["Vu pour la dernière fois", "Last seen"],
  "status.col.time": ["Heure", "Time"],
  "status.col.id": ["Identifiant", "Id"],
  "status.col.till": ["Caisse", "Till"],
  "status.col.terminal": ["Terminal", "Terminal"],
  "status.col.amount": ["Montant", "Amount"],
  "status.col.detail": ["Détail", "Detail"],
  "status.col.role": ["Rôle", "Role"],
  "status.col.sessions": ["Connexions", "Connections"],
  "status.role.cashier": ["Caisse", "Cashier"],
  "status.role.display": ["Affichage", "Display"],
  "status.role.operator": ["Opérateur", "Operator"],
  "status.notOperator": ["Ce jeton est celui d'une caisse « {till} » (rôle {role}), pas d'un opérateur. La page d'état demande un jeton d'opérateur : sur la machine de l'agent, lancez « caisse-ap-relay pair --role operator --till bureau » et saisissez ici le code affiché.", "This token belongs to till “{till}” (role {role}), not to an operator. The status page needs an operator's token: on the agent's machine, run “caisse-ap-relay pair --role operator --till office” and enter the code it prints here."],
  "status.never": ["jamais", "never"],
  "status.noTx": ["Aucune transaction récente.", "No recent transactions."],
  "status.noTill": ["Aucune caisse.", "No till."],
  "status.refreshed": ["Mis à jour à {time}", "Updated at {time}"],
  "status.cert.ok": ["Expire le {date} (dans {days} jours)", "Expires on {date} (in {days} days)"],
  "status.cert.soon": ["Expire bientôt : le {date} (dans {days} jours) — redémarrez l'agent pour le renouveler", "Expires soon: on {date} (in {days} days) — restart the agent to renew it"],
  "status.discover.title": ["Chercher des terminaux", "Find terminals"],
  "status.discover.help": ["L'agent essaie le port Caisse-AP de chaque adresse du réseau (par défaut les réseaux privés de sa machine), demande à chaque terminal qui répond de s'identifier, et donne le bloc [[terminal]] à coller dans sa configuration. Un terminal déjà configuré n'est jamais contacté. Une recherche par minute.", "The agent tries the Caisse-AP port of each address of the network (by default its machine's private networks), asks each terminal that answers to identify itself, and gives the [[terminal]] block to paste into its configuration. A terminal already configured is never contacted. One search a minute."],
  "status.discover.subnet": ["Réseau (facultatif)", "Network (optional)"],
  "status.discover.port": ["Port", "Port"],
  "status.discover.auto": ["les réseaux privés de l'agent", "the agent's private networks"],
  "status.discover.button": ["Chercher des terminaux", "Find terminals"],
  "status.discover.running": ["Recherche sur {subnets}, port {port}… (quelques secondes)", "Searching {subnets}, port {port}… (a few seconds)"],
  "status.discover.done": ["{n} adresse(s) répondent sur {subnets}, port {port}.", "{n} address(es) answer on {subnets}, port {port}."],
  "status.discover.none": ["Aucun terminal sur {subnets}, port {port}. Vérifiez que le terminal est allumé, sur le même réseau, et son port (8888 ou 20002).", "No terminal on {subnets}, port {port}. Check that the terminal is on, on the same network, and its port (8888 or 20002)."],
  "status.discover.wait": ["Une seule recherche par minute : réessayez dans {seconds} s.", "One search a minute: try again in {seconds} s."],
  "status.discover.busy": ["Une recherche est déjà en cours : son résultat s'affiche sur la page qui l'a lancée.", "A search is already running: its result shows on the page that started it."],
  "status.discover.badPort": ["Le port est un nombre de 1 à 65535.", "The port is a number from 1 to 65535."],
  "status.found.terminal": ["Terminal Caisse-AP, protocole {version}, identifiant {cj}", "Caisse-AP terminal, protocol {version}, id {cj}"],
  "status.found.refused": ["Terminal Caisse-AP occupé ou pas prêt ({detail}) : réessayez plus tard", "Caisse-AP terminal busy or not ready ({detail}): try again later"],
  "status.found.no_answer": ["Port ouvert, mais pas de réponse Caisse-AP ({detail})", "Open port, but no Caisse-AP answer ({detail})"],
  "status.found.configured": ["Déjà configuré : « {name} » (non contacté)", "Already configured: “{name}” (not contacted)"],
  "status.found.copy": ["Copier", "Copy"],
  "status.found.copied": ["Copié", "Copied"],
  "status.cert.expired": ["Expiré depuis le {date} — les navigateurs refusent la connexion", "Expired since {date} — browsers refuse the connection"],
});

const REFRESH_MS = 10_000;
const SOON_DAYS = 30;
const TX_LIMIT = 100;
const $ = (id) => document.getElementById(id);
const store = new Store("status");
const client = new RelayClient(pageSocketUrl(), { idPrefix: "status" });
const records = new Map();
const lastSeen = new Map(); // terminal name → ISO time it was last known reachable
let snapshot = null;
let refreshedAt = null;

const page = setupPage(client, store, { signedIn: () => showStatus(true), signedOut: () => showStatus(false) });

function showStatus(shown) {
  $("status").hidden = !shown;
  $("logout-button").hidden = !shown;
}

client.on("welcome", (welcome) => {
  $("agent-name").textContent = welcome.agent;
  if (welcome.role !== "operator") {
    refuse(welcome.till, welcome.role);
    return;
  }
  // An operator receives every till's records live: no `watch` needed.
  refresh();
});

// A till that is not an operator: sign out and say how to get an operator's token.
function refuse(till, role) {
  page.signOut(t("status.notOperator", { till, role: t(`status.role.${role}`) }));
}

client.on("transaction", (record) => {
  merge(record);
  render();
});

client.on("terminals", (list) => {
  if (!snapshot) return;
  snapshot.terminals = list;
  render();
});

$("logout-button").addEventListener("click", () => page.signOut());

async function refresh() {
  if (client.state !== "authenticated") return;
  try {
    snapshot = await client.status();
    snapshot.transactions.forEach(merge);
    refreshedAt = new Date();
    $("error-banner").hidden = true;
  } catch (error) {
    if (error.code === "forbidden") {
      refuse(client.welcome?.till ?? "?", client.welcome?.role ?? "cashier");
      return;
    }
    $("error-banner").textContent = error.message;
    $("error-banner").hidden = error.code === "disconnected";
  }
  render();
}
setInterval(refresh, REFRESH_MS);

function merge(record) {
  const known = records.get(record.id);
  if (!known || (record.seq ?? 0) >= (known.seq ?? 0)) records.set(record.id, record);
}

// Unresolved unknown first, then payments still running, then the most recent.
function rank(record) {
  if (needsCheck(record)) return 0;
  return isFinal(record.state) ? 2 : 1;
}

function render() {
  $("refreshed-at").textContent = refreshedAt ? t("status.refreshed", { time: formatTime(refreshedAt) }) : "";
  renderUnresolved();
  renderTerminals(snapshot?.terminals ?? client.welcome?.terminals ?? []);
  renderTransactions();
  renderTills(snapshot?.tills ?? []);
  renderCertificate(snapshot?.certificate);
}

function renderUnresolved() {
  const count = [...records.values()].filter(needsCheck).length;
  $("unresolved").hidden = count === 0;
  $("unresolved").dataset.count = String(count);
  $("unresolved-title").textContent = t(count === 1 ? "status.unresolved.one" : "status.unresolved", { n: count });
}

function renderTerminals(terminals) {
  // `terminals` events carry no last_seen: keep the last one a status snapshot gave.
  for (const term of terminals) {
    if (term.last_seen) lastSeen.set(term.name, term.last_seen);
  }
  $("terminals-body").replaceChildren(...terminals.map((term) => {
    const seen = lastSeen.get(term.name);
    return h("tr", { "data-testid": `terminal-row-${term.name}`, "data-state": term.state },
      cell("name", {}, h("strong", {}, term.name)),
      cell("address", { class: "num" }, term.address),
      cell("state", {}, h("span", { class: "pill", "data-state": term.state }, t(`term.${term.state}`))),
      cell("current", { class: "id" }, term.current ?? "—"),
      cell("lastSeen", { class: "num" }, seen ? formatWhen(seen) : t("status.never")));
  }));
}

function renderTransactions() {
  const rows = [...records.values()]
    .sort((a, b) => rank(a) - rank(b) || b.updated_at.localeCompare(a.updated_at))
    .slice(0, TX_LIMIT);
  $("tx-empty").hidden = rows.length > 0;
  $("tx-body").replaceChildren(...rows.map((record) => {
    const check = needsCheck(record);
    const cls = check ? "to-check" : isFinal(record.state) ? "" : "live";
    return h("tr", { class: cls, "data-testid": `tx-row-${record.id}`, "data-state": record.state, "data-to-check": check },
      cell("time", { class: "num" }, formatTime(record.created_at)),
      cell("amount", { class: "num right" }, `${record.action === "refund" ? "−" : ""}${formatAmount(record.amount, record.currency)}`),
      cell("state", {}, statePill(record)),
      cell("till", {}, record.till),
      cell("terminal", {}, record.terminal),
      cell("detail", { class: "small" }, detail(record)),
      cell("id", { class: "id" }, record.id));
  }));
}

// A table cell that names its column, shown as a label when a phone stacks the table.
function cell(column, attrs, ...children) {
  return h("td", { ...attrs, "data-label": t(`status.col.${column}`) }, ...children);
}

// Today: the time only; before: date and time.
function formatWhen(iso) {
  const when = new Date(iso);
  return when.toDateString() === new Date().toDateString() ? formatTime(when) : formatDateTime(when);
}

function detail(record) {
  const result = record.result ?? {};
  const parts = [t(`method.${record.method}`)];
  if (result.label) parts.push(`${result.label}${result.af ? ` (AF ${result.af})` : ""}`);
  if (result.card?.application) parts.push(result.card.application);
  if (result.authorization) parts.push(`aut. ${result.authorization}`);
  if (result.partial) parts.push(formatAmount(result.approved_amount ?? 0, record.currency));
  if (record.state === "unknown" && result.reason) parts.push(t(`reason.${result.reason}`));
  if (record.resolution?.note) parts.push(`« ${record.resolution.note} »`);
  return parts.join(" · ");
}

function renderTills(tills) {
  if (!tills.length) {
    $("tills-body").replaceChildren(h("tr", {}, h("td", { colspan: 3, class: "muted" }, t("status.noTill"))));
    return;
  }
  $("tills-body").replaceChildren(...tills.map((till) =>
    h("tr", { "data-testid": `till-row-${till.name}` },
      h("td", {}, h("strong", {}, till.name)),
      h("td", {}, t(`status.role.${till.role}`)),
      h("td", { class: "num" }, String(till.sessions)))));
}

function renderCertificate(cert) {
  const card = $("certificate");
  if (!cert) {
    card.dataset.state = "unknown";
    $("cert-expiry").textContent = "—";
    $("cert-fingerprint").textContent = "";
    return;
  }
  const days = Math.floor((new Date(cert.not_after) - Date.now()) / 86_400_000);
  const state = days < 0 ? "expired" : days < SOON_DAYS ? "soon" : "ok";
  card.dataset.state = state;
  $("cert-expiry").textContent = t(`status.cert.${state}`, { date: formatDateTime(cert.not_after), days });
  $("cert-fingerprint").textContent = cert.fingerprint;
}

// The terminal search (operators, one a minute per agent): its last outcome, re-rendered on
// a language change.
let discovery = { state: "idle" };

$("discover-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const subnet = $("discover-subnet").value.trim();
  const portText = $("discover-port").value.trim();
  const port = portText ? Number(portText) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    showDiscovery({ state: "refused", text: () => t("status.discover.badPort") });
    return;
  }
  $("discover-button").disabled = true;
  const scope = () => ({ subnets: subnet || t("status.discover.auto"), port: port ?? 8888 });
  showDiscovery({ state: "running", text: () => t("status.discover.running", scope()), result: discovery.result });
  try {
    const done = await client.discover({ subnet: subnet || undefined, port });
    showDiscovery({ state: "done", result: done });
  } catch (error) {
    const text = error.code === "rate_limited"
      ? () => (error.retryAfter ? t("status.discover.wait", { seconds: error.retryAfter }) : t("status.discover.busy"))
      : () => error.message;
    // The last search's findings stay shown under the refusal (and while one runs).
    showDiscovery({ state: "refused", text, result: discovery.result });
  } finally {
    $("discover-button").disabled = false;
  }
});

function showDiscovery(next) {
  discovery = next;
  renderDiscovery();
}

function renderDiscovery() {
  const { state, result } = discovery;
  $("discovery").dataset.state = state;
  const scope = result && { subnets: result.subnets.join(", "), port: result.port };
  const text = state === "done"
    ? t(result.found.length ? "status.discover.done" : "status.discover.none", { ...scope, n: result.found.length })
    : discovery.text?.() ?? "";
  $("discover-status").textContent = text;
  $("discover-status").hidden = !text;
  $("discover-results").replaceChildren(...(result?.found ?? []).map(foundItem));
}

// One open port: what it is, and for a terminal its block with a copy button.
function foundItem(found) {
  const text = t(`status.found.${found.answer}`, {
    version: found.version ?? "?", cj: found.pos_id ?? "—", detail: found.detail ?? "", name: found.name ?? "",
  });
  const item = h("li", { "data-testid": `found-${found.address}`, "data-answer": found.answer },
    h("div", { class: "found-head" },
      h("span", { class: "found-text" }, h("strong", { class: "num" }, found.address), ` — ${text}`)));
  if (found.block) {
    const copy = h("button", { class: "btn btn-small", type: "button", "data-testid": "found-copy" }, t("status.found.copy"));
    copy.addEventListener("click", async () => {
      await navigator.clipboard?.writeText(found.block).catch(() => {});
      copy.textContent = t("status.found.copied");
    });
    item.firstChild.append(copy);
    item.append(h("pre", { "data-testid": "found-block" }, found.block));
  }
  return item;
}

onLangChange(() => { render(); renderDiscovery(); });
applyStrings();

page.resume();
render();
