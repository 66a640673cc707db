// An independent Stratum V2 pool for clminer's tests. It shares no code with
// clminer: the Noise NX handshake, the certificate, the framing and the
// share check are written here from sv2-spec on @noble/@scure crypto
// (ElligatorSwift and BIP 324 ECDH from @scure/btc-signer, BIP 340 from
// @noble/curves, ChaCha20-Poly1305 from @noble/ciphers). Every share it
// accepts is re-hashed and checked against the target, the job, the
// version bits and the time, and no share is accepted twice.
//
// Usage: node peer.mjs [--port N] [--target HEX_BE] [--batch N]
//   [--cert-expired] [--job-interval-ms N] [--extended]
// With --extended it requires extended channels (REQUIRES_EXTENDED_CHANNELS)
// and sends coinbase-carrying jobs; shares are checked by rebuilding the
// coinbase with the miner's extranonce and folding the merkle path.
// It prints one JSON line per event on stdout; the first is
// {"event":"listening","port":..,"key":"<base58check authority key>"}.
// It takes commands on stdin, one per line, applied to every connection:
//   target HEX_BE   SetTarget (shares are judged at it from then on)
//   job             a new job on the current prevhash
//   block           a new block: a future job and SetNewPrevHash
//   down / up       drop every connection and refuse new ones / serve again

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { base58 } from '@scure/base';
import { elligatorSwift } from '@scure/btc-signer/p2p.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes('--' + name);

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const concat = (...a) => {
  const out = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of a) { out.set(x, o); o += x.length; }
  return out;
};
const hex = (b) => Buffer.from(b).toString('hex');
const sha256d = (b) => sha256(sha256(b));
const u16 = (v) => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v, true); return b; };
const u32 = (v) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, true); return b; };
const u64 = (v) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v), true); return b; };
const str = (s) => { const b = new TextEncoder().encode(s); return concat(new Uint8Array([b.length]), b); };

// --- keys and certificate (sv2-spec 4.5.3, 4.7) ---
const authPriv = schnorr.utils.randomSecretKey();
const authPub = schnorr.getPublicKey(authPriv); // 32-byte x-only
const authPrefixed = concat(new Uint8Array([1, 0]), authPub);
const authKey = base58.encode(concat(authPrefixed, sha256d(authPrefixed).slice(0, 4)));
const staticKey = elligatorSwift.keygen();
const staticX = elligatorSwift.decode(staticKey.publicKey);
const now = Math.floor(Date.now() / 1000);
const [validFrom, notValidAfter] = flag('cert-expired') ? [now - 7200, now - 3600] : [now - 3600, now + 86400];
const certSigned = concat(u16(0), u32(validFrom), u32(notValidAfter));
const certSig = schnorr.sign(sha256(concat(certSigned, staticX)), authPriv, randomBytes(32));
const certMsg = concat(certSigned, certSig); // SIGNATURE_NOISE_MESSAGE, 74 bytes

// --- Noise (sv2-spec 4.4) ---
const PROTOCOL = new TextEncoder().encode('Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256');
const hmacHash = (k, d) => hmac(sha256, k, d);
const hkdf2 = (ck, ikm) => {
  const tmp = hmacHash(ck, ikm);
  const o1 = hmacHash(tmp, new Uint8Array([1]));
  const o2 = hmacHash(tmp, concat(o1, new Uint8Array([2])));
  return [o1, o2];
};
class Cipher {
  constructor(k) { this.k = k; this.n = 0n; }
  nonce() { const b = new Uint8Array(12); new DataView(b.buffer).setBigUint64(4, this.n, true); return b; }
  seal(ad, pt) { const c = chacha20poly1305(this.k, this.nonce(), ad).encrypt(pt); this.n++; return c; }
  open(ad, ct) { const p = chacha20poly1305(this.k, this.nonce(), ad).decrypt(ct); this.n++; return p; }
}

// responderHandshake turns the initiator's 64-byte ephemeral key into the
// 234-byte reply and the transport ciphers.
function responderHandshake(re) {
  let h = sha256(PROTOCOL);
  let ck = h;
  h = sha256(h);
  let k = null;
  const mixHash = (d) => { h = sha256(concat(h, d)); };
  const mixKey = (ikm) => { let t; [ck, t] = hkdf2(ck, ikm); k = new Cipher(t); };
  const encryptAndHash = (pt) => { const ct = k ? k.seal(h, pt) : pt; mixHash(ct); return ct; };
  mixHash(re);
  mixHash(new Uint8Array(0));
  const e = elligatorSwift.keygen();
  mixHash(e.publicKey);
  mixKey(elligatorSwift.getSharedSecretBip324(e.privateKey, re, e.publicKey, false));
  const encS = encryptAndHash(staticKey.publicKey);
  mixKey(elligatorSwift.getSharedSecretBip324(staticKey.privateKey, re, staticKey.publicKey, false));
  const encCert = encryptAndHash(certMsg);
  const [k1, k2] = hkdf2(ck, new Uint8Array(0));
  return { reply: concat(e.publicKey, encS, encCert), recv: new Cipher(k1), send: new Cipher(k2) };
}

// --- framing (sv2-spec 3.2, 4.6) ---
const MAX_CT = 65535, MAC = 16, MAX_PT = MAX_CT - MAC;
const ctLen = (n) => Math.floor(n / MAX_PT) * MAX_CT + (n % MAX_PT ? (n % MAX_PT) + MAC : 0);
const CHANNEL_MSG = new Set([0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1f, 0x20, 0x21]);

function frame(send, type, payload) {
  const ext = CHANNEL_MSG.has(type) ? 0x8000 : 0;
  const hdr = concat(u16(ext), new Uint8Array([type, payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16]));
  const parts = [send.seal(new Uint8Array(0), hdr)];
  for (let o = 0; o < payload.length; o += MAX_PT) parts.push(send.seal(new Uint8Array(0), payload.subarray(o, o + MAX_PT)));
  return concat(...parts);
}

class Reader {
  constructor(b) { this.b = b; this.o = 0; }
  take(n) { if (this.o + n > this.b.length) throw new Error('short payload'); const v = this.b.subarray(this.o, this.o + n); this.o += n; return v; }
  u8() { return this.take(1)[0]; }
  u16() { return new DataView(this.take(2).slice().buffer).getUint16(0, true); }
  u32() { return new DataView(this.take(4).slice().buffer).getUint32(0, true); }
  f32() { return new DataView(this.take(4).slice().buffer).getFloat32(0, true); }
  str() { return new TextDecoder().decode(this.take(this.u8())); }
  done() { if (this.o !== this.b.length) throw new Error('trailing bytes'); }
}

// --- the pool ---
const targetBE = opt('target', '0fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff');
const u256 = (be) => Uint8Array.from(Buffer.from(be, 'hex')).reverse(); // U256 is little-endian
let target = u256(targetBE);
const sessions = new Set(); // what commands reach
let down = false;
const batch = Number(opt('batch', '1'));
const NBITS = 0x207fffff;
const BIP320 = 0x1fffe000;
const seen = new Set();
const extended = flag('extended');
const EXTRANONCE_SIZE = 8;
let connections = 0;

const leU256 = (b) => BigInt('0x' + hex(Uint8Array.from(b).reverse()));

function serve(sock) {
  if (down) { sock.destroy(); return; }
  const id = ++connections;
  let buf = new Uint8Array(0);
  let st = 'act1';
  let send, recv, hdr = null;
  let channel = 0;
  let jobs = new Map();
  let prev = null, minNTime = 0, nextJob = 1, extranonce = 0;
  let unacked = 0;
  const prefix = randomBytes(4);
  const write = (type, payload) => sock.write(frame(send, type, payload));
  const txids = [randomBytes(32), randomBytes(32), randomBytes(32)]; // the block's other transactions

  // An extended job: a coinbase whose script holds the channel's prefix and
  // the miner's extranonce, in a block of four transactions.
  const coinbaseParts = () => {
    const script = 3 + 1 + prefix.length + EXTRANONCE_SIZE;
    const pre = concat(u32(2), new Uint8Array([1]), new Uint8Array(32), u32(0xffffffff), new Uint8Array([script, 2]), u16(++extranonce));
    const suf = concat(u32(0xffffffff), new Uint8Array([1]), u64(5000000000), new Uint8Array([1, 0x51]), u32(0));
    return { pre, suf };
  };
  // The merkle path of the coinbase (leftmost leaf) among txids.
  const merklePath = () => {
    const h2 = (a, b) => sha256d(concat(a, b));
    return [txids[0], h2(txids[1], txids[2])];
  };
  const extRoot = (j, en) => {
    let root = sha256d(concat(j.pre, prefix, en, j.suf));
    for (const p of j.path) root = sha256d(concat(root, p));
    return root;
  };
  const sendExtJob = (jid, j, active) => {
    const path = concat(new Uint8Array([j.path.length]), ...j.path);
    const b16 = (b) => concat(u16(b.length), b);
    write(0x1f, concat(u32(channel), u32(jid), active ? concat(new Uint8Array([1]), u32(minNTime)) : new Uint8Array([0]),
      u32(j.version), new Uint8Array([1]), path, b16(j.pre), b16(j.suf)));
  };

  // A one-transaction block: the merkle root is the coinbase's txid, and
  // the coinbase carries the channel's extranonce prefix and a counter.
  const newRoot = () => {
    const cb = concat(u32(2), new Uint8Array([1]), new Uint8Array(32), u32(0xffffffff),
      str(hex(prefix) + ':' + (++extranonce)), u32(0xffffffff), new Uint8Array([0]), u32(0));
    return sha256d(cb);
  };
  const newBlock = () => {
    const jid = nextJob++;
    const j = extended ? { ...coinbaseParts(), path: merklePath(), version: 0x20000000 } : { root: newRoot(), version: 0x20000000 };
    jobs = new Map([[jid, j]]);
    prev = randomBytes(32);
    minNTime = Math.floor(Date.now() / 1000);
    j.prev = prev;
    if (extended) sendExtJob(jid, j, false);
    else write(0x15, concat(u32(channel), u32(jid), new Uint8Array([0]), u32(j.version), j.root));
    write(0x20, concat(u32(channel), u32(jid), prev, u32(minNTime), u32(NBITS)));
    emit({ event: 'block', conn: id, job: jid });
  };
  const newJob = () => {
    const jid = nextJob++;
    const j = extended ? { ...coinbaseParts(), path: merklePath(), version: 0x20000000, prev } : { root: newRoot(), version: 0x20000000, prev };
    jobs.set(jid, j);
    if (extended) { sendExtJob(jid, j, true); emit({ event: 'job', conn: id, job: jid }); return; }
    write(0x15, concat(u32(channel), u32(jid), new Uint8Array([1]), u32(minNTime), u32(j.version), j.root));
    emit({ event: 'job', conn: id, job: jid });
  };

  const judge = (r, isExt) => {
    const [ch, seq, jid, nonce, ntime, version] = [r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32()];
    const en = isExt ? r.take(r.u8()) : null;
    r.done();
    const j = jobs.get(jid);
    let reason = '';
    let hash = null;
    if (ch !== channel) reason = 'invalid-channel-id';
    else if (isExt !== extended) reason = 'wrong-channel-kind';
    else if (!j) reason = 'invalid-job-id';
    else if (isExt && en.length !== EXTRANONCE_SIZE) reason = 'invalid-extranonce-size';
    else {
      const root = isExt ? extRoot(j, en) : j.root;
      const header = concat(u32(version), j.prev, root, u32(ntime), u32(NBITS), u32(nonce));
      hash = sha256d(header);
      if (((version ^ j.version) & ~BIP320) !== 0) reason = 'invalid-version';
      else if (ntime < minNTime || ntime > Math.floor(Date.now() / 1000) + 7200) reason = 'invalid-timestamp';
      else if (leU256(hash) > leU256(target)) reason = 'difficulty-too-low';
      else if (seen.has(hex(hash))) reason = 'duplicate-share';
    }
    if (reason) {
      write(0x1d, concat(u32(ch), u32(seq), str(reason)));
      emit({ event: 'share', conn: id, seq, accepted: false, reason });
      return;
    }
    seen.add(hex(hash));
    emit({ event: 'share', conn: id, seq, job: jid, accepted: true, hash: hex(Uint8Array.from(hash).reverse()) });
    if (++unacked >= batch) {
      write(0x1c, concat(u32(ch), u32(seq), u32(unacked), u64(unacked)));
      unacked = 0;
    }
  };

  const onMessage = (type, payload) => {
    const r = new Reader(payload);
    switch (type) {
      case 0x00: { // SetupConnection
        const protocol = r.u8(), min = r.u16(), max = r.u16(), flags = r.u32();
        r.str(); r.u16(); r.str(); r.str(); r.str(); r.str(); r.done();
        if (protocol !== 0 || min > 2 || max < 2) {
          write(0x02, concat(u32(0), str('unsupported-protocol')));
          return;
        }
        emit({ event: 'setup', conn: id, flags });
        write(0x01, concat(u16(2), u32(extended ? 2 : 0)));
        break;
      }
      case 0x10: case 0x13: { // OpenStandardMiningChannel, OpenExtendedMiningChannel
        const req = r.u32(), user = r.str(), rate = r.f32();
        r.take(32);
        const minSize = type === 0x13 ? r.u16() : 0;
        r.done();
        if ((type === 0x13) !== extended || minSize > EXTRANONCE_SIZE) {
          write(0x12, concat(u32(req), str(extended ? 'extended-channels-only' : 'standard-channels-only')));
          emit({ event: 'refused', conn: id, type });
          return;
        }
        channel = id;
        emit({ event: 'open', conn: id, user, hashrate: rate, kind: extended ? 'extended' : 'standard' });
        const pfx = concat(new Uint8Array([prefix.length]), prefix);
        if (extended) write(0x14, concat(u32(req), u32(channel), target, u16(EXTRANONCE_SIZE), pfx, u32(0)));
        else write(0x11, concat(u32(req), u32(channel), target, pfx, u32(0)));
        newBlock();
        const ms = Number(opt('job-interval-ms', '0'));
        if (ms > 0) {
          const t = setInterval(() => { if (sock.writable) newJob(); else clearInterval(t); }, ms);
          sock.on('close', () => clearInterval(t));
        }
        break;
      }
      case 0x1a: judge(r, false); break;
      case 0x1b: judge(r, true); break;
      case 0x16: emit({ event: 'update', conn: id, hashrate: (r.u32(), r.f32()) }); break;
      default: emit({ event: 'ignored', conn: id, type });
    }
  };

  sock.on('data', (chunk) => {
    buf = concat(buf, chunk);
    try {
      for (;;) {
        if (st === 'act1') {
          if (buf.length < 64) return;
          const hs = responderHandshake(buf.slice(0, 64));
          buf = buf.slice(64);
          send = hs.send; recv = hs.recv;
          sock.write(hs.reply);
          st = 'frames';
          emit({ event: 'handshake', conn: id });
          continue;
        }
        if (!hdr) {
          if (buf.length < 22) return;
          const h = recv.open(new Uint8Array(0), buf.slice(0, 22));
          buf = buf.slice(22);
          hdr = { type: h[2], len: h[3] | (h[4] << 8) | (h[5] << 16) };
          if (hdr.len > 1 << 20) throw new Error('frame too large');
        }
        const n = ctLen(hdr.len);
        if (buf.length < n) return;
        const parts = [];
        for (let o = 0; o < n; o += MAX_CT) parts.push(recv.open(new Uint8Array(0), buf.slice(o, Math.min(n, o + MAX_CT))));
        buf = buf.slice(n);
        const { type } = hdr;
        hdr = null;
        onMessage(type, concat(...parts));
      }
    } catch (err) {
      emit({ event: 'error', conn: id, err: String(err.message || err) });
      sock.destroy();
    }
  });
  const session = {
    sock,
    command(cmd) {
      if (!send || !channel) return;
      if (cmd === 'job') newJob();
      else if (cmd === 'block') newBlock();
      else if (cmd === 'target') { write(0x21, concat(u32(channel), target)); emit({ event: 'target', conn: id }); }
    },
  };
  sessions.add(session);
  sock.on('error', () => {});
  sock.on('close', () => { sessions.delete(session); emit({ event: 'closed', conn: id }); });
}

function command(line) {
  const [cmd, arg] = line.trim().split(/\s+/);
  switch (cmd) {
    case 'target':
      target = u256(arg);
      break;
    case 'down':
      down = true;
      for (const s of sessions) s.sock.destroy();
      emit({ event: 'down' });
      return;
    case 'up':
      down = false;
      emit({ event: 'up' });
      return;
    case 'job': case 'block':
      break;
    default:
      emit({ event: 'error', err: 'unknown command ' + cmd });
      return;
  }
  for (const s of sessions) s.command(cmd);
  emit({ event: 'command', cmd });
}

const server = net.createServer(serve);
server.listen(Number(opt('port', '0')), '127.0.0.1', () => {
  emit({ event: 'listening', port: server.address().port, key: authKey, authority: hex(authPub) });
});
let pending = '';
process.stdin.on('data', (chunk) => {
  pending += chunk;
  let i;
  while ((i = pending.indexOf('\n')) >= 0) {
    command(pending.slice(0, i));
    pending = pending.slice(i + 1);
  }
});
process.stdin.on('end', () => process.exit(0)); // the test closed our stdin: stop
process.stdin.resume();
