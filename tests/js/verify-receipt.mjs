// Verifies a caisse-ap-relay receipt against the agent's public key pinned at onboarding
// (docs/backend.md). CI runs this very file with the `jose` package.
// Usage: node verify-receipt.mjs '<pinned JWK>' '<receipt>' '<issuer>'
import { importJWK, jwtVerify } from "jose";

export async function verifyReceipt(receipt, pinnedJwk, issuer) {
  const key = await importJWK(pinnedJwk, "EdDSA");
  const { payload, protectedHeader } = await jwtVerify(receipt, key, {
    algorithms: ["EdDSA"],
    typ: "caisse-ap-receipt+jwt",
    issuer,
  });
  if (protectedHeader.kid !== pinnedJwk.kid) {
    throw new Error("signed by another key than the pinned one");
  }
  // Keep, per payload.id, the receipt with the highest payload.seq.
  return payload;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [jwk, receipt, issuer] = process.argv.slice(2);
  try {
    const payload = await verifyReceipt(receipt, JSON.parse(jwk), issuer);
    console.log(JSON.stringify(payload));
  } catch (err) {
    console.error(`invalid receipt: ${err.message}`);
    process.exit(1);
  }
}
