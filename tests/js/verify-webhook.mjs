// Verifies a webhook delivery as a POS backend does (docs/backend.md), with the
// `standardwebhooks` package. CI runs this very file.
// Usage: node verify-webhook.mjs < {"secret": "whsec_…", "headers": {…}, "body": "…"}
import { Webhook } from "standardwebhooks";

export function verifyDelivery(secret, headers, rawBody) {
  // Throws unless webhook-signature matches and webhook-timestamp is within 5 minutes.
  const event = new Webhook(secret).verify(rawBody, headers);
  // Key on event.data.id and keep the highest event.data.seq; webhook-id only dedups retries.
  return event;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const { secret, headers, body } = JSON.parse(input);
  try {
    console.log(JSON.stringify(verifyDelivery(secret, headers, body)));
  } catch (err) {
    console.error(`invalid delivery: ${err.message}`);
    process.exit(1);
  }
}
