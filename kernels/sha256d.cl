/*
 * sha256d.cl: Bitcoin double SHA-256 nonce search, written from FIPS 180-4.
 *
 * Each work-item hashes VECSIZE consecutive nonces at once, one per vector
 * lane: wide vectors are what lets CPU runtimes (POCL) fill their SIMD units,
 * while GPUs run best with VECSIZE 1. Build with -D VECSIZE=1|2|4|8|16.
 *
 * The first chunk of the header (bytes 0..63) never changes within a unit, so
 * the host passes its SHA-256 state (the midstate). Rounds 0..2 of the second
 * chunk read only message words 0..2, which do not depend on the nonce either,
 * so the host runs them too and passes the state after round 2, along with
 * message words 16 and 17 (which read words 0..2 and constant padding).
 *
 * A nonce is a candidate when the top 32 bits of the hash, read as the
 * little-endian 256-bit number Bitcoin compares with the target, are at most
 * the target's top word. Those bits are the byte-swapped last state word H7
 * of the second hash, and H7 = IV7 + (e after round 60), so the second hash
 * stops after round 60: rounds 61..63 only move that value from e to h.
 *
 * Nonces are numbered as the header stores them (little-endian), so message
 * word 19 is the byte-swapped nonce and the host can submit what it reads.
 *
 * Candidates go to out[1..slots]; out[0] counts them all, so the host sees
 * out[0] > slots as an overflow and re-sweeps the range in smaller pieces.
 */

#ifndef VECSIZE
#define VECSIZE 1
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#if VECSIZE == 1
typedef uint u;
#define ANY(x) (x)
#define STORE(v, p) ((p)[0] = (v))
#define LANES 0u
#else
typedef CAT(uint, VECSIZE) u;
#define ANY(x) any(x)
#define STORE(v, p) CAT(vstore, VECSIZE)((v), 0, (p))
#if VECSIZE == 2
#define LANES ((u)(0, 1))
#elif VECSIZE == 4
#define LANES ((u)(0, 1, 2, 3))
#elif VECSIZE == 8
#define LANES ((u)(0, 1, 2, 3, 4, 5, 6, 7))
#elif VECSIZE == 16
#define LANES ((u)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#error "VECSIZE must be 1, 2, 4, 8 or 16"
#endif
#endif

__constant uint K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* OpenCL's rotate() is a left rotation; SHA-256 is specified with right ones. */
#define ROTR(x, n) rotate((x), (u)(32 - (n)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
/* Written as masked merges (x ^ ((y ^ x) & m)) rather than bitselect():
 * LLVM turns bitselect into two ANDs whose OR it then treats as an ADD,
 * which blocks the 3-input logic instruction (AVX-512 vpternlogd) that
 * the xor form maps to; GPUs compile both forms to the same code. */
#define CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
#define MAJ(a, b, c) ((b) ^ (((a) ^ (b)) & ((b) ^ (c))))

/* The moves are free: the compiler renames registers instead of copying. */
#define RND(k, w)                                                   \
    {                                                               \
        u t1 = h + BSIG1(e) + CH(e, f, g) + (k) + (w);              \
        u t2 = BSIG0(a) + MAJ(a, b, c);                             \
        h = g;                                                      \
        g = f;                                                      \
        f = e;                                                      \
        e = d + t1;                                                 \
        d = c;                                                      \
        c = b;                                                      \
        b = a;                                                      \
        a = t1 + t2;                                                \
    }

/* Rounds 0..15 read the message directly. */
#define R(i) RND(K[i], w[i])
/* Later rounds extend the schedule in a 16-word ring; every index is a
 * compile-time constant, so the ring lives in registers. */
#define RS(i)                                                                       \
    {                                                                               \
        w[(i) & 15] += SSIG0(w[((i) + 1) & 15]) + w[((i) + 9) & 15] +               \
                       SSIG1(w[((i) + 14) & 15]);                                   \
        RND(K[i], w[(i) & 15]);                                                     \
    }
#define RS4(i) RS(i) RS((i) + 1) RS((i) + 2) RS((i) + 3)
#define RS16(i) RS4(i) RS4((i) + 4) RS4((i) + 8) RS4((i) + 12)

/* Byte swap with two masks and two rotations: vector-friendly, no shuffles. */
#define BSWAP(x) (rotate((x) & (u)0x00ff00ffu, (u)24) | rotate((x) & (u)0xff00ff00u, (u)8))

__kernel void sha256d_search(
    uint m0, uint m1, uint m2, uint m3, uint m4, uint m5, uint m6, uint m7, /* midstate */
    uint tail0, uint tail1, uint tail2, /* words 16..18; 16 and 17 only feed w16, w17 */
    uint pa, uint pb, uint pc, uint pd, uint pe, uint pf, uint pg, uint ph, /* after round 2 */
    uint w16, uint w17,                                                     /* schedule words */
    uint base,  /* nonce of work-item 0, lane 0 */
    uint count, /* nonces in this batch; the last work-items may be past it */
    uint top,   /* the target's most significant 32 bits */
    __global uint *out,
    uint slots)
{
    uint first = (uint)get_global_id(0) * VECSIZE;
    u nonce = (u)(base + first) + LANES;

    /* First hash, second chunk: header words 16..19 then the padding of an
     * 80-byte message (bit length 640). */
    u w[16];
    w[0] = (u)w16; /* already extended: rounds 0..15 below start at 3 */
    w[1] = (u)w17;
    w[2] = (u)tail2;
    w[3] = BSWAP(nonce); /* the header stores the nonce little-endian */
    w[4] = (u)0x80000000u;
    w[5] = (u)0;
    w[6] = (u)0;
    w[7] = (u)0;
    w[8] = (u)0;
    w[9] = (u)0;
    w[10] = (u)0;
    w[11] = (u)0;
    w[12] = (u)0;
    w[13] = (u)0;
    w[14] = (u)0;
    w[15] = (u)640;

    u a = (u)pa, b = (u)pb, c = (u)pc, d = (u)pd;
    u e = (u)pe, f = (u)pf, g = (u)pg, h = (u)ph;
    R(3) R(4) R(5) R(6) R(7) R(8) R(9) R(10) R(11) R(12) R(13) R(14) R(15)
    /* w[0] and w[1] already hold words 16 and 17 (rounds 0..2 ran on the
     * host), so the ring resumes at word 18. */
    RND(K[16], w[0]) RND(K[17], w[1])
    RS(18) RS(19) RS4(20) RS4(24) RS4(28) RS16(32) RS16(48)

    /* Second hash: the 32-byte first digest, padding, bit length 256. */
    w[0] = a + (u)m0;
    w[1] = b + (u)m1;
    w[2] = c + (u)m2;
    w[3] = d + (u)m3;
    w[4] = e + (u)m4;
    w[5] = f + (u)m5;
    w[6] = g + (u)m6;
    w[7] = h + (u)m7;
    w[8] = (u)0x80000000u;
    w[9] = (u)0;
    w[10] = (u)0;
    w[11] = (u)0;
    w[12] = (u)0;
    w[13] = (u)0;
    w[14] = (u)0;
    w[15] = (u)256;

    a = (u)0x6a09e667u;
    b = (u)0xbb67ae85u;
    c = (u)0x3c6ef372u;
    d = (u)0xa54ff53au;
    e = (u)0x510e527fu;
    f = (u)0x9b05688cu;
    g = (u)0x1f83d9abu;
    h = (u)0x5be0cd19u;
    R(0) R(1) R(2) R(3) R(4) R(5) R(6) R(7) R(8) R(9) R(10) R(11) R(12) R(13) R(14) R(15)
    RS16(16) RS16(32) RS4(48) RS4(52) RS4(56) RS(60)

    /* Difficulty >= 1 (top == 0, nearly every real pool) needs H7 == 0,
     * i.e. e == -IV7: one compare instead of a byte swap per lane. */
    u h7 = e + (u)0x5be0cd19u;
    if (top == 0 ? ANY(h7 == (u)0) : ANY(BSWAP(h7) <= (u)top)) {
        u top_le = BSWAP(h7);
        uint lanes[VECSIZE];
        STORE(top_le, lanes);
        for (uint i = 0; i < VECSIZE; i++) {
            if (lanes[i] <= top && first + i < count) {
                uint idx = atomic_inc(&out[0]);
                if (idx < slots) {
                    out[1 + idx] = base + first + i;
                }
            }
        }
    }
}
