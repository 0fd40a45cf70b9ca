#!/usr/bin/env python3
"""Independent reproduction of the pseudonym known-answer vectors.

Recomputes every vector in docs/pseudonym-vectors.json from the construction
in DESIGN.md section 6 with nothing but Python's standard library (hmac,
hashlib, base64), and checks both the normalised value and the token. The C
test tests/unit/test_pseudonym.c checks the same file against the C
implementation, so the two implementations are tied to one set of literals.

Usage: python3 tests/unit/test_pseudonym_kat.py [path-to-pseudostream]

The binary argument is accepted because ctest passes it, and is not used: the
point of this test is that it does not depend on our C code.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import sys

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "pseudonym-vectors.json"
FIELDS = ("secret_b64", "key_id", "domain", "kind", "value", "normalised", "token")


class Invalid(Exception):
    """The value may not be pseudonymised."""


def normalise(kind: str, value: bytes) -> bytes:
    if kind == "nhs_number":
        # Digits, with single spaces or hyphens allowed between them (never
        # leading or trailing); ten digits; modulus 11 check digit.
        digits = bytearray()
        for i, c in enumerate(value):
            if 0x30 <= c <= 0x39:
                digits.append(c)
            elif c in b" -" and digits and i + 1 < len(value):
                continue
            else:
                raise Invalid("character other than digits and separators")
        if len(digits) != 10:
            raise Invalid("not ten digits")
        total = sum((d - 0x30) * (10 - i) for i, d in enumerate(digits[:9]))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check == 10 or check != digits[9] - 0x30:
            raise Invalid("modulus 11")
        return bytes(digits)
    # bytes.strip() and bytes.upper() touch ASCII only, exactly as the C code.
    norm = value.strip(b" \t\n\v\f\r").upper()
    if not norm or len(norm) > 256:
        raise Invalid("empty or too long")
    return norm


def token(secret: bytes, key_id: int, domain: str, kind: str, norm: bytes) -> str:
    domain_key = hmac.new(secret, b"pseudostream/v1/domain/" + domain.encode(),
                          hashlib.sha256).digest()
    digest = hmac.new(domain_key, kind.encode() + b":" + norm, hashlib.sha256).digest()
    return "%d.%s" % (key_id, base64.b32encode(digest[:20]).decode().lower().rstrip("="))


def main() -> int:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    passed = failed = 0
    if not isinstance(vectors, list) or not vectors:
        print("%s: expected a non-empty list" % VECTORS)
        return 1
    for n, v in enumerate(vectors):
        where = "vector %d (%s, %s)" % (n, v.get("domain"), v.get("kind"))
        missing = [f for f in FIELDS if f not in v]
        if missing:
            print("%s: missing %s" % (where, ", ".join(missing)))
            failed += 1
            continue
        try:
            secret = base64.b64decode(v["secret_b64"], validate=True)
            if not 32 <= len(secret) <= 64:
                raise ValueError("secret must be 32..64 bytes")
            norm = normalise(v["kind"], v["value"].encode("utf-8"))
            got = token(secret, v["key_id"], v["domain"], v["kind"], norm)
        except (Invalid, ValueError) as e:
            print("%s: %s" % (where, e))
            failed += 1
            continue
        if norm != v["normalised"].encode("utf-8"):
            print("%s: normalised value differs from the file" % where)
            failed += 1
        elif got != v["token"]:
            print("%s: token %s, file says %s" % (where, got, v["token"]))
            failed += 1
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
