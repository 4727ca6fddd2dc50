// Type-checks client.d.ts the way a POS written in TypeScript uses the package
// (`tsc --noEmit` in CI): every export, method and event. Never run.
import {
  CLOSE_UNAUTHORIZED,
  FINAL_STATES,
  PaymentHandle,
  RelayClient,
  RelayError,
  defaultUrl,
  isFinal,
  newPaymentId,
  pair,
  type ConnectionDetail,
  type FinalState,
  type StatusMessage,
  type TerminalInfo,
  type TransactionRecord,
  type WelcomeMessage,
} from "caisse-ap-relay-client";

export async function tour(code: string): Promise<void> {
  const paired: { till: string; token: string } = await pair(code, { url: defaultUrl(), timeoutMs: 5000 });
  const client = new RelayClient(defaultUrl(), { token: paired.token, idPrefix: "till-1", backoff: { initialMs: 250 } });
  client.setToken(paired.token);
  const events = [
    client.on("connecting", (d: ConnectionDetail) => d.state),
    client.on("open", (d: ConnectionDetail) => d.retryInMs),
    client.on("authenticated", (d: ConnectionDetail) => d.welcome?.till),
    client.on("closed", (d: ConnectionDetail) => d.code === CLOSE_UNAUTHORIZED),
    client.on("state", (d: ConnectionDetail) => d.reason),
    client.on("welcome", (w: WelcomeMessage) => w.api),
    client.on("transaction", (r: TransactionRecord) => r.receipt),
    client.on("terminals", (t: TerminalInfo[]) => t.map((x) => x.current)),
    client.on("error", (e: RelayError) => e.current),
  ];
  const welcome: WelcomeMessage = await client.connect();
  const state: string = client.state + String(client.url) + String(client.token) + String(client.welcome?.role);

  const handle: PaymentHandle = client.pay({ id: newPaymentId("pos"), terminal: welcome.terminals[0].name, amount: 1245, currency: "EUR" });
  handle.addEventListener("update", (e) => console.log(e.detail.state));
  handle.addEventListener("final", (e) => console.log(e.detail.receipt));
  handle.addEventListener("error", (e) => console.log(e.detail.code));
  const off = handle.onUpdate((r) => console.log(r.seq, handle.state, handle.done, handle.record, handle.error));
  for await (const record of handle) console.log(record.state);
  off();
  try {
    const final: TransactionRecord = await handle.result;
    if (isFinal(final.state)) {
      const s: FinalState = final.state;
      console.log(s, FINAL_STATES.includes(s), final.result?.approved_amount, final.receipt);
    }
  } catch (err) {
    if (err instanceof RelayError && err.code === "terminal_busy") console.log("held by", err.current);
  }
  await handle.cancel().catch((e: RelayError) => e.request);

  const got: TransactionRecord = await client.get(handle.id);
  await client.resolve(got.id, "not_charged", "no ticket");
  await client.cancel(got.id).catch(() => undefined);
  client.watch("tpe-1");
  const terminals: TerminalInfo[] = await client.terminals();
  const status: StatusMessage = await client.status();
  console.log(state, terminals.length, status.webhooks.map((w) => w.pending));
  await client.pair(code);
  client.addEventListener("transaction", (e) => console.log(e.detail.id));
  events.forEach((unsubscribe) => unsubscribe());
  client.close();
}
