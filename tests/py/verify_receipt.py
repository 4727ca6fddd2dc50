"""Verifies a caisse-ap-relay receipt against the agent's public key pinned at onboarding
(docs/backend.md). CI runs this very file with the `joserfc` package.

Usage: python verify_receipt.py '<pinned JWK>' '<receipt>' '<issuer>'
"""
import json
import sys

from joserfc import jws
from joserfc.jwk import OKPKey


def verify_receipt(receipt: str, pinned_jwk: dict, issuer: str) -> dict:
    key = OKPKey.import_key(pinned_jwk)
    token = jws.deserialize_compact(receipt, key, algorithms=["EdDSA"])
    header = token.protected
    if header.get("typ") != "caisse-ap-receipt+jwt":
        raise ValueError("not a caisse-ap-relay receipt")
    if header.get("kid") != pinned_jwk["kid"]:
        raise ValueError("signed by another key than the pinned one")
    payload = json.loads(token.payload)
    if payload.get("iss") != issuer:
        raise ValueError("issued by another agent")
    # Keep, per payload["id"], the receipt with the highest payload["seq"].
    return payload


if __name__ == "__main__":
    jwk, receipt, issuer = sys.argv[1:4]
    try:
        claims = verify_receipt(receipt, json.loads(jwk), issuer)
    except Exception as err:  # any failure means: do not trust this result
        print(f"invalid receipt: {err}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(claims))
