#include "ps_hmac.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PS_HMAC_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/* SHA-256 works on 64-byte blocks; a keyed state has compressed one (the
 * padded key), so its bit count is 512 and its buffer empty. */
#define BLOCK 64
#define KEYED_BITS 512u

static size_t parts_total(const struct ps_hmac_part *parts, size_t count)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (parts[i].len > PS_HMAC_MESSAGE_MAX - total) {
            return SIZE_MAX;
        }
        total += parts[i].len;
    }
    return total;
}

int ps_hmac_finish_portable(const crypto_auth_hmacsha256_state *keyed,
                            const struct ps_hmac_part *parts, size_t count,
                            uint8_t out[PS_HMAC_BYTES])
{
    if (parts_total(parts, count) == SIZE_MAX) {
        return -1;
    }
    crypto_auth_hmacsha256_state st;
    memcpy(&st, keyed, sizeof(st));
    for (size_t i = 0; i < count; i++) {
        crypto_auth_hmacsha256_update(&st, parts[i].data, parts[i].len);
    }
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
    return 0;
}

#ifdef PS_HMAC_X86

static const uint32_t K256[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

/*
 * The SHA-256 compression of whole blocks with the SHA extensions. The
 * instructions keep the eight working words as two vectors, ABEF and CDGH;
 * each sha256rnds2 does two rounds, each group of four message words comes
 * from the previous sixteen by sha256msg1 (the σ0 half), one add (W[t-7]) and
 * sha256msg2 (the σ1 half). w[] holds the last four groups, w[i & 3] being
 * group i - 4 until it is replaced by group i.
 */
__attribute__((target("sha,ssse3,sse4.1"))) static void
sha256_blocks_hw(uint32_t state[8], const uint8_t *data, size_t blocks)
{
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
    __m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
    __m128i abef = _mm_alignr_epi8(tmp, cdgh, 8);
    cdgh = _mm_blend_epi16(cdgh, tmp, 0xF0);

    for (; blocks > 0; blocks--, data += BLOCK) {
        __m128i abef_in = abef;
        __m128i cdgh_in = cdgh;
        __m128i w[4];
        for (int i = 0; i < 16; i++) {
            __m128i m;
            if (i < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), byteswap);
            } else {
                m = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
                m = _mm_sha256msg2_epu32(m, w[(i + 3) & 3]);
            }
            w[i & 3] = m;
            __m128i mk = _mm_add_epi32(m, _mm_load_si128((const __m128i *)&K256[4 * i]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, mk);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(mk, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
    }

    tmp = _mm_shuffle_epi32(abef, 0x1B);
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(tmp, cdgh, 0xF0));
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(cdgh, tmp, 8));
}

static int cpu_has_sha(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) {
        return 0;
    }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        return 0;
    }
    return (b & (1u << 29)) != 0; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}

#else

static void sha256_blocks_hw(uint32_t state[8], const uint8_t *data, size_t blocks)
{
    (void)state;
    (void)data;
    (void)blocks;
    abort(); /* unreachable: cpu_has_sha() is 0 */
}

static int cpu_has_sha(void)
{
    return 0;
}

#endif

/* cpuid can trap to a hypervisor: asked once. */
static int sha_hw(void)
{
    static atomic_int cached = -1;
    int v = atomic_load(&cached);
    if (v < 0) {
        v = cpu_has_sha();
        atomic_store(&cached, v);
    }
    return v;
}

static void store_be32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, sizeof(v));
}

/* Pads msg[0..len) in place as SHA-256 does for a message that follows
 * prefix_bytes already compressed; returns the padded length (a multiple of
 * BLOCK). msg must have room for len + BLOCK + 8 bytes. */
static size_t pad(uint8_t *msg, size_t len, uint64_t prefix_bytes)
{
    size_t padded = (len + 1 + 8 + BLOCK - 1) / BLOCK * BLOCK;
    msg[len] = 0x80;
    memset(msg + len + 1, 0, padded - len - 1 - 8);
    uint64_t bits = (prefix_bytes + len) * 8;
    store_be32(msg + padded - 8, (uint32_t)(bits >> 32));
    store_be32(msg + padded - 4, (uint32_t)bits);
    return padded;
}

int ps_hmac_finish_hw(const crypto_auth_hmacsha256_state *keyed,
                      const struct ps_hmac_part *parts, size_t count, uint8_t out[PS_HMAC_BYTES])
{
    size_t total = parts_total(parts, count);
    if (!sha_hw() || total == SIZE_MAX || keyed->ictx.count != KEYED_BITS ||
        keyed->octx.count != KEYED_BITS) {
        return -1;
    }
    uint8_t msg[PS_HMAC_MESSAGE_MAX + BLOCK + 8];
    uint32_t st[8];
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (parts[i].len) {
            memcpy(msg + n, parts[i].data, parts[i].len);
            n += parts[i].len;
        }
    }
    size_t padded = pad(msg, n, BLOCK);

    /* inner = SHA-256(key ^ ipad || message), from the keyed inner state */
    memcpy(st, keyed->ictx.state, sizeof(st));
    sha256_blocks_hw(st, msg, padded / BLOCK);
    sodium_memzero(msg, padded);
    /* outer = SHA-256(key ^ opad || inner), one block */
    for (int i = 0; i < 8; i++) {
        store_be32(msg + 4 * i, st[i]);
    }
    padded = pad(msg, PS_HMAC_BYTES, BLOCK);
    memcpy(st, keyed->octx.state, sizeof(st));
    sha256_blocks_hw(st, msg, padded / BLOCK);
    for (int i = 0; i < 8; i++) {
        store_be32(out + 4 * i, st[i]);
    }
    sodium_memzero(msg, padded);
    sodium_memzero(st, sizeof(st));
    return 0;
}

int ps_hmac_accelerated(void)
{
    static atomic_int cached = -1;
    int v = atomic_load(&cached);
    if (v < 0) {
        const char *portable = getenv("PS_SHA_PORTABLE");
        v = (portable && strcmp(portable, "1") == 0) ? 0 : sha_hw();
        atomic_store(&cached, v);
    }
    return v;
}

int ps_hmac_finish(const crypto_auth_hmacsha256_state *keyed, const struct ps_hmac_part *parts,
                   size_t count, uint8_t out[PS_HMAC_BYTES])
{
    if (ps_hmac_accelerated() && ps_hmac_finish_hw(keyed, parts, count, out) == 0) {
        return 0;
    }
    return ps_hmac_finish_portable(keyed, parts, count, out);
}
