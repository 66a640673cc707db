#!/usr/bin/env python3
"""A scripted Stratum v1 miner written apart from the Go code: its own JSON
framing, coinbase, merkle and header code (hashlib only), after
shared/docs/stratum-v1.md section 4. The Go test runs it against the proxy.

usage: miner.py HOST:PORT WORKER SHARES
Mines SHARES shares with version rolling, checks every verdict and the local
refusals, and prints one JSON object with what it saw."""

import hashlib
import json
import socket
import struct
import sys

DIFF1 = 0xFFFF << 208


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=20)
        self.f = self.s.makefile("rb")
        self.next_id = 0
        self.notes = []

    def call(self, method, params):
        self.next_id += 1
        line = json.dumps({"id": self.next_id, "method": method, "params": params}) + "\n"
        self.s.sendall(line.encode())
        while True:
            raw = self.f.readline()
            if not raw:
                raise RuntimeError("connection closed waiting for %s" % method)
            m = json.loads(raw)
            if m.get("method"):
                self.notes.append(m)
            elif m.get("id") == self.next_id:
                return m

    def note(self, method):
        while True:
            for i, m in enumerate(self.notes):
                if m["method"] == method:
                    return self.notes.pop(i)
            raw = self.f.readline()
            if not raw:
                raise RuntimeError("connection closed waiting for " + method)
            m = json.loads(raw)
            if m.get("method"):
                self.notes.append(m)


def header(job, en1, en2, version, ntime, nonce):
    """The 80-byte header per section 4: every word of the notify is
    big-endian hex; the prevhash has each 4-byte group reversed."""
    coinbase = bytes.fromhex(job[2]) + bytes.fromhex(en1) + en2 + bytes.fromhex(job[3])
    root = sha256d(coinbase)
    for b in job[4]:
        root = sha256d(root + bytes.fromhex(b))
    prev = bytes.fromhex(job[1])
    prev = b"".join(prev[i:i + 4][::-1] for i in range(0, 32, 4))
    nbits = int(job[6], 16)
    return struct.pack("<I", version) + prev + root + struct.pack("<III", ntime, nbits, nonce)


def target(diff):
    # exact for the binary fractions tests use: floor(diff1 / diff)
    num, den = float(diff).as_integer_ratio()
    return DIFF1 * den // num


def find(job, en1, en2, version, ntime, tgt):
    head = header(job, en1, en2, version, ntime, 0)[:76]
    for nonce in range(1 << 32):
        h = sha256d(head + struct.pack("<I", nonce))
        if int.from_bytes(h, "little") <= tgt:
            return nonce, h
    raise RuntimeError("no share")


def main():
    addr, worker, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
    c = Conn(addr)
    out = {"accepted": 0, "codes": {}, "hashes": []}
    r = c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}])
    res = r["result"]
    assert res["version-rolling"] is True, res
    mask = int(res["version-rolling.mask"], 16)
    r = c.call("mining.subscribe", ["pyminer/1"])
    _, en1, size = r["result"]
    out["extranonce1"], out["extranonce2_size"] = en1, size
    r = c.call("mining.authorize", [worker, "x"])
    assert r["result"] is True, r
    diff = c.note("mining.set_difficulty")["params"][0]
    job = c.note("mining.notify")["params"]
    tgt = target(diff)
    jv, ntime = int(job[5], 16), int(job[7], 16)
    low_bit = mask & -mask
    for i in range(want):
        en2 = (i + 1).to_bytes(size, "little")
        version = jv & ~mask | (low_bit if i % 2 else 0)
        nonce, h = find(job, en1, en2, version, ntime, tgt)
        params = [worker, job[0], en2.hex(), "%08x" % ntime, "%08x" % nonce]
        if version != jv:
            params.append("%08x" % (version & mask))
        r = c.call("mining.submit", params)
        if r["result"] is True:
            out["accepted"] += 1
            out["hashes"].append(h[::-1].hex())
        else:
            out["codes"][str(r["error"][0])] = out["codes"].get(str(r["error"][0]), 0) + 1
        last = params
    # the same share again: a duplicate, refused by the proxy
    r = c.call("mining.submit", last)
    out["duplicate_code"] = r["error"][0] if r["result"] is not True else None
    # a nonce that misses the target: low difficulty
    en2 = (want + 1).to_bytes(size, "little")
    head = header(job, en1, en2, jv, ntime, 0)[:76]
    for nonce in range(1 << 32):
        if int.from_bytes(sha256d(head + struct.pack("<I", nonce)), "little") > tgt:
            break
    r = c.call("mining.submit", [worker, job[0], en2.hex(), "%08x" % ntime, "%08x" % nonce])
    out["low_difficulty_code"] = r["error"][0] if r["result"] is not True else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
