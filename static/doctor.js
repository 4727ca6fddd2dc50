// Connection doctor: checks, from the till's own browser, each thing a payment needs
// (certificate trusted, local-network permission, origin allowed, token valid) and says
// what to fix. Plain French by default like the agent's other pages, English on request
// (the choice is remembered under the same key as theirs). The token typed here only
// goes to the agent's WebSocket, never into a URL or storage.

const TEXT = {
  fr: {
    switch: "English",
    title: "Diagnostic de connexion",
    intro: "Cette page vérifie, depuis le navigateur de la caisse, tout ce qu'il faut pour payer avec l'agent caisse-ap-relay.",
    agentLabel: "Adresse de l'agent",
    tokenLabel: "Jeton de la caisse (facultatif, jamais envoyé ailleurs qu'à l'agent)",
    run: "Lancer le diagnostic",
    certName: "Certificat de l'agent reconnu",
    lnaName: "Accès au réseau local autorisé",
    originName: "Origine de la page acceptée",
    tokenName: "Jeton de la caisse valide",
    embed: "Pour tester depuis le site de caisse lui-même, ouvrez cette page avec ?agent=https://ADRESSE:8443 sur ce site (les fichiers doctor.html, doctor.js et access.css peuvent y être copiés).",
    ok: "OK",
    fail: "à corriger",
    skip: "non testé",
    wait: "en cours…",
    certFix: "Le navigateur ne joint pas l'agent en HTTPS. Installez le certificat de l'agent (page d'installation : http://ADRESSE-DE-L-AGENT:8080/), redémarrez le navigateur, et vérifiez que l'agent tourne et que l'adresse est juste. Si la barre d'adresse affiche « Non sécurisé », le certificat n'est pas installé.",
    lnaFix: "Le navigateur bloque l'accès de cette page au réseau local. Depuis Chrome 147 et Firefox 154, une page Internet qui veut joindre un appareil du magasin doit y être autorisée : à la question « … veut accéder aux appareils de votre réseau local », répondez Autoriser. Si vous avez refusé : cliquez sur l'icône à gauche de l'adresse → Paramètres du site → Accès au réseau local → Autoriser, puis rechargez. Sur des caisses gérées, l'informaticien peut l'autoriser par stratégie (LocalNetworkAccessAllowedForUrls).",
    lnaAsk: "Le navigateur va peut-être demander l'autorisation d'accéder au réseau local : répondez Autoriser.",
    sameOrigin: "page servie par l'agent lui-même : rien à autoriser ici. Testez depuis le site de caisse (voir en bas).",
    originFix: "L'agent refuse les pages de cette origine ({origin}). Ajoutez exactement « {origin} » à allowed_origins dans la section [server] du fichier de configuration de l'agent, puis redémarrez-le.",
    tokenSkip: "saisissez le jeton de la caisse pour le tester.",
    tokenFix: "L'agent ne reconnaît pas ce jeton ({code}). Appairez de nouveau la caisse : sur le poste de l'agent, « caisse-ap-relay pair --till NOM » donne un code à saisir dans la page de caisse.",
    tokenLimited: "Trop d'essais erronés depuis cette caisse : attendez une minute avant de réessayer.",
    tokenNoAnswer: "L'agent n'a pas répondu au jeton. Réessayez ; si cela persiste, consultez le journal de l'agent.",
    welcome_cashier: "caisse « {till} », qui encaisse",
    welcome_display: "caisse « {till} », en affichage client",
    blocked: "vérification impossible tant que le point précédent n'est pas corrigé.",
  },
  en: {
    switch: "Français",
    title: "Connection doctor",
    intro: "This page checks, from the till's browser, everything needed to take payments with the caisse-ap-relay agent.",
    agentLabel: "Agent address",
    tokenLabel: "Till token (optional, only ever sent to the agent)",
    run: "Run the checks",
    certName: "Agent certificate trusted",
    lnaName: "Local network access allowed",
    originName: "Page origin accepted",
    tokenName: "Till token valid",
    embed: "To test from the POS site itself, open this page with ?agent=https://ADDRESS:8443 on that site (doctor.html, doctor.js and access.css may be copied there).",
    ok: "OK",
    fail: "to fix",
    skip: "not tested",
    wait: "checking…",
    certFix: "The browser cannot reach the agent over HTTPS. Install the agent's certificate (setup page: http://AGENT-ADDRESS:8080/), restart the browser, and check that the agent runs and the address is right. If the address bar says \"Not secure\", the certificate is not installed.",
    lnaFix: "The browser blocks this page from the local network. Since Chrome 147 and Firefox 154, a web page that wants to reach a device in the shop needs permission: when asked \"… wants to access devices on your local network\", choose Allow. If you refused: click the icon left of the address → Site settings → Local network access → Allow, then reload. On managed tills, IT can allow it by policy (LocalNetworkAccessAllowedForUrls).",
    lnaAsk: "The browser may ask for permission to access the local network: choose Allow.",
    sameOrigin: "page served by the agent itself: nothing to allow here. Test from the POS site (see below).",
    originFix: "The agent refuses pages from this origin ({origin}). Add exactly \"{origin}\" to allowed_origins in the [server] section of the agent's configuration file, then restart it.",
    tokenSkip: "enter the till's token to test it.",
    tokenFix: "The agent does not know this token ({code}). Pair the till again: on the agent's machine, \"caisse-ap-relay pair --till NAME\" prints a code to enter on the till's page.",
    tokenLimited: "Too many wrong attempts from this till: wait a minute before trying again.",
    tokenNoAnswer: "The agent did not answer the token. Try again; if it persists, look at the agent's log.",
    welcome_cashier: "till \"{till}\", taking payments",
    welcome_display: "till \"{till}\", customer display",
    blocked: "cannot be checked until the previous point is fixed.",
  },
};

const WAIT_MS = 8000;
const LANG_KEY = "caisse-ap-relay.lang";
let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "fr";

function t(key, values = {}) {
  return TEXT[lang][key].replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
}

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
}

/** What each check last showed, kept as text keys so that a language switch can redraw it. */
const shown = new Map();

/**
 * Shows one check's state ("ok", "fail", "skip", "wait") and the advice that goes with it
 * (the key of a text, and its values).
 */
function show(name, state, detail = "", values = {}) {
  shown.set(name, { state, detail, values });
  draw(name);
}

function draw(name) {
  const { state, detail, values } = shown.get(name);
  const item = document.getElementById(`check-${name}`);
  item.dataset.state = state;
  item.querySelector(".verdict").textContent = t(state);
  item.querySelector(".fix").textContent = detail ? t(detail, values) : "";
}

function withTimeout(promise) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), WAIT_MS)),
  ]);
}

async function reaches(url, mode) {
  try {
    // targetAddressSpace tells Local Network Access-aware browsers what we mean to reach.
    await withTimeout(fetch(url, { mode, cache: "no-store", targetAddressSpace: "local" }));
    return true;
  } catch {
    return false;
  }
}

async function lnaPermission() {
  try {
    return (await navigator.permissions.query({ name: "local-network-access" })).state;
  } catch {
    return "unknown";
  }
}

/** Opens the WebSocket; resolves with the open socket or null when the handshake failed. */
function openSocket(agent) {
  const url = new URL("/ws", agent);
  url.protocol = "wss:";
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => { socket.close(); resolve(null); }, WAIT_MS);
    socket.onopen = () => { clearTimeout(timer); resolve(socket); };
    socket.onerror = () => { clearTimeout(timer); resolve(null); };
  });
}

/** Sends hello; resolves with {welcome} or {code} ("unauthorized", "rate_limited", 4401, "no_answer"). */
function hello(socket, token) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ code: "no_answer" }), WAIT_MS);
    socket.onmessage = (event) => {
      let message = {};
      try { message = JSON.parse(event.data); } catch { /* not JSON: treated as no answer */ }
      if (message.type === "welcome") { clearTimeout(timer); resolve({ welcome: message }); }
      if (message.type === "error") { clearTimeout(timer); resolve({ code: message.code }); }
    };
    socket.onclose = (event) => { clearTimeout(timer); resolve({ code: event.code }); };
    socket.send(JSON.stringify({ type: "hello", token }));
  });
}

async function checkToken(socket, token) {
  if (!socket) return show("token", "skip", "blocked");
  if (!token) { socket.close(); return show("token", "skip", "tokenSkip"); }
  const answer = await hello(socket, token);
  socket.close();
  if (answer.welcome) {
    return show("token", "ok", `welcome_${answer.welcome.role}`, answer.welcome);
  }
  if (answer.code === "rate_limited") return show("token", "fail", "tokenLimited");
  if (answer.code === "no_answer") return show("token", "fail", "tokenNoAnswer");
  show("token", "fail", "tokenFix", { code: answer.code });
}

async function run(agent, token) {
  for (const name of ["cert", "lna", "origin", "token"]) show(name, "wait");
  const sameOrigin = new URL(agent).origin === location.origin;
  if (!sameOrigin) show("lna", "wait", "lnaAsk");
  // A CORS success proves all three network checks at once; on failure, a no-cors request
  // (which ignores CORS but not certificates or the local-network permission) tells them apart.
  const probe = await reaches(new URL("/lna-probe", agent), "cors");
  const reached = probe || (await reaches(new URL("/healthz", agent), "no-cors"));
  const permission = await lnaPermission();
  const lnaBlocked = !reached && !sameOrigin && permission === "denied";
  show("cert", reached ? "ok" : lnaBlocked ? "skip" : "fail", reached ? "" : lnaBlocked ? "blocked" : "certFix");
  if (sameOrigin) show("lna", "ok", "sameOrigin");
  else show("lna", reached ? "ok" : lnaBlocked ? "fail" : "skip", reached ? "" : lnaBlocked ? "lnaFix" : "blocked");
  const socket = reached ? await openSocket(agent) : null;
  if (!reached) show("origin", "skip", "blocked");
  else if (socket && probe) show("origin", "ok");
  else show("origin", "fail", "originFix", { origin: location.origin });
  await checkToken(socket, token);
}

function start() {
  translate();
  const agentInput = document.getElementById("agent");
  agentInput.value = new URLSearchParams(location.search).get("agent") ?? location.origin;
  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "fr" ? "en" : "fr";
    localStorage.setItem(LANG_KEY, lang);
    translate();
    shown.forEach((_, name) => draw(name));
  });
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(agentInput.value, document.getElementById("token").value);
  });
  if (location.protocol === "https:") run(agentInput.value, "");
}

start();
