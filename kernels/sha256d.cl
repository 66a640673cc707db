/*
 * sha256d.cl: Bitcoin double SHA-256 nonce search, written from FIPS 180-4.
 *
 * Each work-item hashes VECSIZE consecutive nonces at once, one per vector
 * lane: wide vectors are what lets CPU runtimes (POCL) fill their SIMD units,
 * while GPUs run best with VECSIZE 1. Build with -D VECSIZE=1|2|4|8|16.
 *
 * Two kernels share one body. sha256d_search hashes one version of the
 * header; sha256d_search_multi hashes NVER versions (-D NVER=2|4) of each
 * nonce. With BIP 310 version rolling the versions of one unit differ only
 * in the first chunk (bytes 0..63), so their second chunks carry the same
 * message (merkle tail, ntime, nbits, nonce, padding) and the message
 * schedule W16..W63 of the first hash is computed once per nonce for all of
 * them; only the rounds and the second hash are per version. That is the
 * schedule sharing ASICs do with several midstates.
 *
 * The host passes, per version, the SHA-256 state after the first chunk (the
 * midstate) and everything about rounds 0..6 of the second chunk that no
 * nonce changes (see gpu/opencl/precompute.go for the layout); the shared
 * schedule words 16 and 17 and the nonce-free parts of words 18, 19, 31 and
 * 32 are kernel arguments. Every sum the host can fold is one fewer input to
 * a per-nonce add.
 *
 * A nonce is a candidate when the top 32 bits of the hash, read as the
 * little-endian 256-bit number Bitcoin compares with the target, are at most
 * the target's top word. Those bits are the byte-swapped last state word H7
 * of the second hash, and H7 = IV7 + (e after round 60), so the second hash
 * stops after round 60: rounds 61..63 only move that value from e to h.
 *
 * Nonces are numbered as the header stores them (little-endian), so message
 * word 3 of the second chunk is the byte-swapped nonce and the host can
 * submit what it reads. (Enumerating that word directly would save the swap,
 * one PRMT per work-item on NVIDIA, but would make a sweep's nonce range
 * non-contiguous in header order.)
 *
 * Candidates go to out[1..2*slots] as (nonce, version index) pairs; out[0]
 * counts them all, so the host sees out[0] > slots as an overflow and
 * re-sweeps the range in smaller pieces.
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


#ifndef NVER
#define NVER 1
#endif
#if NVER != 1 && NVER != 2 && NVER != 4
#error "NVER must be 1, 2 or 4"
#endif

/* OpenCL's rotate() is a left rotation; SHA-256 is specified with right ones. */
#define ROTR(x, n) rotate((x), (u)(32 - (n)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
/* Ch as a masked merge (x ^ ((y ^ x) & m)) rather than bitselect(): LLVM
 * turns bitselect into two ANDs whose OR it then treats as an ADD, which
 * blocks the 3-input logic instruction (AVX-512 vpternlogd, NVIDIA LOP3)
 * that the xor form maps to. */
#define CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
/* Maj has two shapes, picked by the host from the device vendor:
 * - MAJ_LOP3 (NVIDIA): the textbook form, one 3-input LOP3 per round.
 * - default (AMD, POCL): the masked merge b ^ ((a ^ b) & (b ^ c)), whose
 *   a ^ b is the next round's b ^ c, so 2-input ISAs pay two ops, not four;
 *   on NVIDIA that reuse splits the LOP3 tree in two. */
#ifdef MAJ_LOP3
#define MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))
#else
#define MAJ(a, b, c) ((b) ^ (((a) ^ (b)) & ((b) ^ (c))))
#endif

/* One round of the state a##n..h##n (n may be empty); hkw is
 * h + K[i] + W[i]. The moves are free: the compiler renames registers
 * instead of copying. */
#define RNDN(n, hkw)                                                \
    {                                                               \
        u t1 = (hkw) + BSIG1(e##n) + CH(e##n, f##n, g##n);          \
        u t2 = BSIG0(a##n) + MAJ(a##n, b##n, c##n);                 \
        h##n = g##n;                                                \
        g##n = f##n;                                                \
        f##n = e##n;                                                \
        e##n = d##n + t1;                                           \
        d##n = c##n;                                                \
        c##n = b##n;                                                \
        b##n = a##n;                                                \
        a##n = t1 + t2;                                             \
    }
#define RNDX(hkw) RNDN(, hkw)
#define RND(k, w) RNDX(h + ((k) + (w)))

/* Byte swap. Scalar (GPUs): a byte shuffle, which NVIDIA does in one PRMT
 * (ptx-ops counts 5 fewer operations per use than the masks); vectors: two
 * masks and two rotations, with no shuffles. */
#if VECSIZE == 1
#define BSWAP(x) as_uint(as_uchar4(x).s3210)
#else
#define BSWAP(x) (rotate((x) & (u)0x00ff00ffu, (u)24) | rotate((x) & (u)0xff00ff00u, (u)8))
#endif

/* Words per version in the pv buffer; the layout is precompute.go's. */
#define VREC 20
#define PV_MID 0   /* 8: midstate, added to the first hash's result */
#define PV_E3 8    /* e after round 3 less the nonce word */
#define PV_A3 9    /* a after round 3 less the nonce word */
#define PV_A2 10   /* a, b, c, e, f, g after round 2 */
#define PV_B2 11
#define PV_C2 12
#define PV_E2 13
#define PV_F2 14
#define PV_G2 15
#define PV_H4 16   /* h + K[4] + W[4] of round 4 (h = g2, W[4] = 0x80000000) */
#define PV_H5 17   /* f2 + K[5] */
#define PV_H6 18   /* e2 + K[6] */

/* Word i of the first hash's message schedule in w: a 16-word ring where
 * the rounds are unrolled (so each word is live for 16 rounds only, which
 * CPU runtimes allocate with fewer register copies), all 64 words where a
 * loop indexes it at run time. */
#define W(i) w[ring ? ((i) & 15) : (i)]

/* Word i (18..63) of the first hash's message schedule. Words 4..15 are
 * the padding of an 80-byte message (bit length 640), constants the
 * compiler folds in; the nonce-free parts of words 18, 19, 31 and 32 are
 * the host's (w18p = W2 + s1(W16), w19p = s1(W17) + s0(W4),
 * w31p = s0(W16) + W15, w32p = s0(W17) + W16). */
static inline __attribute__((always_inline)) u schedule(
    const u *w, const bool ring, int i, uint w18p, uint w19p, uint w31p, uint w32p)
{
    switch (i) {
    case 18:
        return (u)w18p + SSIG0(W(3));
    case 19:
        return (u)w19p + W(3);
    case 31:
        return (u)w31p + W(24) + SSIG1(W(29));
    case 32:
        return (u)w32p + W(25) + SSIG1(W(30));
    }
    return W(i - 16) + SSIG0(W(i - 15)) + W(i - 7) + SSIG1(W(i - 2));
}

/* Reports the lanes of version v whose second hash, with e after round 60,
 * meets top. */
static inline __attribute__((always_inline)) void report(
    uint v, u e, uint first, uint base, uint count, uint top, __global uint *out, uint slots)
{
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
                    out[1 + 2 * idx] = base + first + i;
                    out[2 + 2 * idx] = v;
                }
            }
        }
    }
}

/* The second hash of version v, whose first digest is the state a..h plus
 * the midstate in p; reports the lanes that meet top. */
static inline __attribute__((always_inline)) void second(
    uint v, __constant uint *p, u a, u b, u c, u d, u e, u f, u g, u h,
    uint first, uint base, uint count, uint top, __global uint *out, uint slots)
{
    /* Second hash: the 32-byte first digest, padding, bit length 256. */
    u x[61];
    x[0] = a + (u)p[PV_MID + 0];
    x[1] = b + (u)p[PV_MID + 1];
    x[2] = c + (u)p[PV_MID + 2];
    x[3] = d + (u)p[PV_MID + 3];
    x[4] = e + (u)p[PV_MID + 4];
    x[5] = f + (u)p[PV_MID + 5];
    x[6] = g + (u)p[PV_MID + 6];
    x[7] = h + (u)p[PV_MID + 7];
    x[8] = (u)0x80000000u;
#pragma unroll
    for (int i = 9; i < 15; i++)
        x[i] = (u)0;
    x[15] = (u)256;

    a = (u)0x6a09e667u;
    b = (u)0xbb67ae85u;
    c = (u)0x3c6ef372u;
    d = (u)0xa54ff53au;
    e = (u)0x510e527fu;
    f = (u)0x9b05688cu;
    g = (u)0x1f83d9abu;
    h = (u)0x5be0cd19u;
    /* The schedule is extended as the rounds go, so each word is live for
     * 16 rounds only. */
#pragma unroll
    for (int i = 0; i < 61; i++) {
        if (i >= 16)
            x[i] = x[i - 16] + SSIG0(x[i - 15]) + x[i - 7] + SSIG1(x[i - 2]);
        RND(K[i], x[i])
    }

    report(v, e, first, base, count, top, out, slots);
}

/* Version n's state after round 3, from its host data p##n: round 3 is
 * the first to read the nonce, and its other terms are the host's, as are
 * the nonce-free sums of rounds 4..6 (R456). */
#define DECLN(n)                                                                       \
    __constant uint *p##n = pv + (n) * VREC;                                           \
    u a##n = (u)p##n[PV_A3] + W(3), b##n = (u)p##n[PV_A2], c##n = (u)p##n[PV_B2],       \
      d##n = (u)p##n[PV_C2];                                                           \
    u e##n = (u)p##n[PV_E3] + W(3), f##n = (u)p##n[PV_E2], g##n = (u)p##n[PV_F2],       \
      h##n = (u)p##n[PV_G2];
#define R456(n) RNDN(n, (u)p##n[PV_H4]) RNDN(n, (u)p##n[PV_H5]) RNDN(n, (u)p##n[PV_H6])
#define RI(n) RNDN(n, h##n + (K[i] + W(i)))
#define SECN(n) second(n, p##n, a##n, b##n, c##n, d##n, e##n, f##n, g##n, h##n, first, base, count, top, out, slots);

/* EACH1 and EACHV apply M to every version of the single- and the
 * multi-version kernel. */
#define EACH1(M) M(0)
#if NVER == 2
#define EACHV(M) M(0) M(1)
#else
#define EACHV(M) M(0) M(1) M(2) M(3)
#endif

/* FIRST_ROUNDS runs rounds 3..END-1 of the first hash. The versions run
 * interleaved: round i of every version next to the others, reading the
 * schedule word just computed, so the first hash's schedule is computed
 * once per nonce and kept in a 16-word ring, and the versions' rounds are
 * independent chains side by side. Every index is a compile-time constant
 * once unrolled, so on GPUs the ring and the states live in registers.
 * UNROLLED_BODY then runs each version's second hash. */
#define FIRST_ROUNDS(EACH, END)                                     \
    EACH(DECLN)                                                     \
    EACH(R456)                                                      \
    _Pragma("unroll")                                               \
    for (int i = 7; i < (END); i++) {                               \
        if (i >= 18)                                                \
            W(i) = schedule(w, ring, i, w18p, w19p, w31p, w32p);    \
        EACH(RI)                                                    \
    }
#define UNROLLED_BODY(EACH) FIRST_ROUNDS(EACH, 64) EACH(SECN)

#ifdef LOOP_ROUNDS
/* CPU runtimes (LOOP_ROUNDS, set by the host): the same, but rounds 32 on
 * of both hashes run as loops of 8 rounds over whole 64-word schedules,
 * and the versions' second hashes run interleaved too. Fully unrolled,
 * several versions' code outgrows a CPU core's instruction caches; GPUs
 * must not take this form, as their arrays indexed at run time go to
 * memory. */
#define X2SET(n)                                                              \
    u x##n[64];                                                               \
    x##n[0] = a##n + (u)p##n[PV_MID + 0];                                     \
    x##n[1] = b##n + (u)p##n[PV_MID + 1];                                     \
    x##n[2] = c##n + (u)p##n[PV_MID + 2];                                     \
    x##n[3] = d##n + (u)p##n[PV_MID + 3];                                     \
    x##n[4] = e##n + (u)p##n[PV_MID + 4];                                     \
    x##n[5] = f##n + (u)p##n[PV_MID + 5];                                     \
    x##n[6] = g##n + (u)p##n[PV_MID + 6];                                     \
    x##n[7] = h##n + (u)p##n[PV_MID + 7];                                     \
    x##n[8] = (u)0x80000000u;                                                 \
    x##n[9] = x##n[10] = x##n[11] = x##n[12] = x##n[13] = x##n[14] = (u)0;     \
    x##n[15] = (u)256;                                                        \
    a##n = (u)0x6a09e667u;                                                    \
    b##n = (u)0xbb67ae85u;                                                    \
    c##n = (u)0x3c6ef372u;                                                    \
    d##n = (u)0xa54ff53au;                                                    \
    e##n = (u)0x510e527fu;                                                    \
    f##n = (u)0x9b05688cu;                                                    \
    g##n = (u)0x1f83d9abu;                                                    \
    h##n = (u)0x5be0cd19u;
#define X2S(n) x##n[i] = x##n[i - 16] + SSIG0(x##n[i - 15]) + x##n[i - 7] + SSIG1(x##n[i - 2]);
#define X2R(n) RNDN(n, h##n + (K[i] + x##n[i]))
#define REPN(n) report(n, e##n, first, base, count, top, out, slots);
#define LOOPED_BODY(EACH)                                                 \
    FIRST_ROUNDS(EACH, 32)                                                \
    _Pragma("unroll 8")                                                   \
    for (int i = 32; i < 64; i++) {                                       \
        W(i) = W(i - 16) + SSIG0(W(i - 15)) + W(i - 7) + SSIG1(W(i - 2)); \
        EACH(RI)                                                          \
    }                                                                     \
    EACH(X2SET)                                                           \
    _Pragma("unroll")                                                     \
    for (int i = 0; i < 32; i++) {                                        \
        if (i >= 16) {                                                    \
            EACH(X2S)                                                     \
        }                                                                 \
        EACH(X2R)                                                         \
    }                                                                     \
    _Pragma("unroll 8")                                                   \
    for (int i = 32; i < 56; i++) {                                       \
        EACH(X2S)                                                         \
        EACH(X2R)                                                         \
    }                                                                     \
    _Pragma("unroll")                                                     \
    for (int i = 56; i < 61; i++) {                                       \
        EACH(X2S)                                                         \
        EACH(X2R)                                                         \
    }                                                                     \
    EACH(REPN)
#endif

/* The arguments of both kernels, in this order (device.go's arg* indexes). */
#define SEARCH_ARGS                                                              \
    __constant uint *pv, /* VREC words per version */                            \
    uint w16, uint w17,  /* schedule words 16, 17 */                             \
    uint w18p, uint w19p, uint w31p, uint w32p, /* nonce-free parts */           \
    uint base,  /* nonce of work-item 0, lane 0 */                               \
    uint count, /* nonces in this batch; the last work-items may be past it */   \
    uint top,   /* the target's most significant 32 bits */                      \
    __global uint *out, uint slots

/* The kernels' common start: the nonce words of this work-item and the
 * schedule words every version shares. RING picks the 16-word ring for w
 * (see W) over the whole 64 words the loops index. */
#define SEARCH_BODY(RING, BODY)                                                  \
    const bool ring = RING;                                                      \
    uint first = (uint)get_global_id(0) * VECSIZE;                               \
    u w[64];                                                                     \
    /* The header stores the nonce little-endian. */                             \
    W(3) = BSWAP((u)(base + first) + LANES);                                     \
    W(4) = (u)0x80000000u;                                                       \
    for (int i = 5; i < 15; i++)                                                 \
        W(i) = (u)0;                                                             \
    W(15) = (u)640;                                                              \
    W(16) = (u)w16;                                                              \
    W(17) = (u)w17;                                                              \
    BODY

/* MULTI_ONLY leaves the single-version kernel out, so that ptx-ops, which
 * counts a whole program, counts the multi-version kernel alone. */
#ifndef MULTI_ONLY
__kernel void sha256d_search(SEARCH_ARGS)
{
    SEARCH_BODY(true, UNROLLED_BODY(EACH1))
}
#endif

#if NVER != 1
__kernel void sha256d_search_multi(SEARCH_ARGS)
{
#ifdef LOOP_ROUNDS
    SEARCH_BODY(false, LOOPED_BODY(EACHV))
#else
    SEARCH_BODY(true, UNROLLED_BODY(EACHV))
#endif
}
#endif
