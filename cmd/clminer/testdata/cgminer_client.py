#!/usr/bin/env python3
"""A cgminer API client written from cgminer's API-README, not from clminer's
server: it sends one request per connection, reads until the miner closes
the socket, drops the NUL terminator and parses the reply. The text form is
split on unescaped '|', ',' and '=' as API 1.7+ escapes them.

usage: cgminer_client.py HOST PORT COMMAND [PARAMETER] [--text]
Prints the reply as JSON (the text form as a list of sections, each a list
of [name, value] pairs in order).
"""
import json
import socket
import sys


def request(host, port, payload):
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.sendall(payload.encode())
        chunks = []
        while True:
            more = s.recv(4096)
            if not more:
                break
            chunks.append(more)
    finally:
        s.close()
    data = b"".join(chunks).decode()
    return data.replace("\x00", "")


def split_unescaped(s, sep):
    out, cur, esc = [], [], False
    for ch in s:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def unescape(s):
    out, esc = [], False
    for ch in s:
        if esc:
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        else:
            out.append(ch)
    return "".join(out)


def parse_text(reply):
    sections = []
    for sec in split_unescaped(reply, "|"):
        if not sec:
            continue
        pairs = []
        for item in split_unescaped(sec, ","):
            kv = split_unescaped(item, "=")
            name = unescape(kv[0])
            value = unescape("=".join(kv[1:])) if len(kv) > 1 else None
            pairs.append([name, value])
        sections.append(pairs)
    return sections


def main(argv):
    text = "--text" in argv
    args = [a for a in argv if a != "--text"]
    host, port, command = args[0], int(args[1]), args[2]
    parameter = args[3] if len(args) > 3 else None
    if text:
        payload = command if parameter is None else command + "|" + parameter
        print(json.dumps(parse_text(request(host, port, payload))))
        return
    req = {"command": command}
    if parameter is not None:
        req["parameter"] = parameter
    print(json.dumps(json.loads(request(host, port, json.dumps(req)))))


if __name__ == "__main__":
    main(sys.argv[1:])
