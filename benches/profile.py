#!/usr/bin/env python3
"""Splits a `perf record --call-graph dwarf` profile of the main job into the cost categories
of docs/ARCHITECTURE.md question 7, for the routing node's threads only (`lnshard-shard-*`).

Usage: perf script -i FILE --no-demangle -F comm,ip,sym | python3 benches/profile.py

Each sample goes to one category: composite operations first (onion processing, persistence,
BOLT 8 transport), then the innermost primitive (signing, verification, key derivation,
hashing), then decoding/encoding, transaction building, allocation, the rest."""
import re
import sys
import json
from collections import Counter

# (category, regex on a frame's symbol), checked in this order; the first category with a
# matching frame anywhere in the stack wins.
CATEGORIES = [
    ("onion (build/peel, ECDH, HMAC, stream cipher)", r"lightning_core.*onion|onion.*peel"),
    ("persistence (records, postcard, WAL write, fdatasync)",
     r"shard_engine.*(durable|store)|postcard|fdatasync|fsync|persist.*(snapshot|record|envelope)"),
    ("BOLT 8 transport (ChaCha20-Poly1305)", r"lightning_core.*transport|chacha20poly1305"),
    ("ECDSA signing", r"secp256k1_ecdsa_sign|ecdsa_sig_sign"),
    ("ECDSA verification", r"secp256k1_ecdsa_verify|ecdsa_sig_verify"),
    ("key derivation (per-commitment points and keys)",
     r"CommitmentKeys.*derive|derive_channel_keys|derive_public|derive_private|derive_revocation|"
     r"per_commitment_point|pubkey_tweak|pubkey_combine|pubkey_create|seckey_tweak|privkey_tweak|"
     r"ecmult_const"),
    ("hashing (SHA-256)", r"sha256|bitcoin_hashes"),
    ("wire decode", r"lightning_core.*(wire|ser|tlv).*(decode|read)|Reader"),
    ("wire encode", r"lightning_core.*(wire|ser|tlv).*(encode|write)"),
    ("transaction building and sighash", r"lightning_core.*transactions|sighash|SighashCache|consensus_encode"),
    ("allocation and copying", r"malloc|free|realloc|memcpy|memmove|__rust_alloc|__rust_dealloc|cfree|_int_"),
    ("queues and scheduling", r"crossbeam|parking_lot|futex|sched|syscall"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in CATEGORIES]


def samples(lines):
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            comm = line.split()[0]
            frames = []
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "")
    if comm is not None:
        yield comm, frames


def main():
    thread_prefix = sys.argv[1] if len(sys.argv) > 1 else "lnshard-shard"
    counts, total = Counter(), 0
    for comm, frames in samples(sys.stdin):
        if not comm.startswith(thread_prefix):
            continue
        total += 1
        stack = " | ".join(frames)
        for name, rx in COMPILED:
            if rx.search(stack):
                counts[name] += 1
                break
        else:
            counts["other (channel state machine, routing, glue)"] += 1
    shares = {name: round(100.0 * n / max(total, 1), 1) for name, n in counts.most_common()}
    for name, share in shares.items():
        print(f"{share:5.1f}%  {name}")
    print(f"{total} samples on threads {thread_prefix}*")
    print(json.dumps({"samples": total, "threads": thread_prefix, "shares_percent": shares}))


if __name__ == "__main__":
    main()
