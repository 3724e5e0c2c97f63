#!/usr/bin/env python3
"""An independent SCRAM client (RFC 5802 / RFC 7677) for roost-auth's tests.

Written against the RFC with hashlib/hmac only, so it shares no code with
the Rust server.

  scram_client.py login  <sha256|sha512> <user> <password>
      Line protocol on stdin/stdout: prints client-first, reads server-first,
      prints client-final, reads server-final and prints OK when the server
      signature verifies (BAD otherwise).
  scram_client.py derive <sha256|sha512> <user> <password> <iterations> <salt-b64>
      Prints a credentials-file line for the user.
"""
import base64
import hashlib
import hmac
import os
import sys

NAMES = {"sha256": "SCRAM-SHA-256", "sha512": "SCRAM-SHA-512"}


def keys(alg, password, salt, iterations):
    salted = hashlib.pbkdf2_hmac(alg, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", alg).digest()
    stored_key = hashlib.new(alg, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", alg).digest()
    return client_key, stored_key, server_key


def saslname(user):
    return user.replace("=", "=3D").replace(",", "=2C")


def login(alg, user, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    bare = f"n={saslname(user)},r={nonce}"
    print("n,," + bare, flush=True)
    server_first = sys.stdin.readline().strip()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        print("BAD nonce", flush=True)
        return 1
    salt = base64.b64decode(attrs["s"])
    iterations = int(attrs["i"])
    client_key, stored_key, server_key = keys(alg, password, salt, iterations)
    without_proof = "c=" + base64.b64encode(b"n,,").decode() + ",r=" + attrs["r"]
    auth_message = ",".join([bare, server_first, without_proof]).encode()
    signature = hmac.new(stored_key, auth_message, alg).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    print(without_proof + ",p=" + base64.b64encode(proof).decode(), flush=True)
    server_final = sys.stdin.readline().strip()
    expected = "v=" + base64.b64encode(hmac.new(server_key, auth_message, alg).digest()).decode()
    ok = hmac.compare_digest(server_final, expected)
    print("OK" if ok else "BAD signature", flush=True)
    return 0 if ok else 1


def derive(alg, user, password, iterations, salt_b64):
    salt = base64.b64decode(salt_b64)
    _, stored_key, server_key = keys(alg, password, salt, int(iterations))
    b64 = lambda b: base64.b64encode(b).decode()
    print(f"{user}:{NAMES[alg]}:{iterations}:{b64(salt)}:{b64(stored_key)}:{b64(server_key)}")
    return 0


if __name__ == "__main__":
    cmd, alg, *rest = sys.argv[1:]
    sys.exit(login(alg, *rest) if cmd == "login" else derive(alg, *rest))
