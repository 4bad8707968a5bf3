/*
 * The C runtime of provernet's SP1 guests: SP1's syscalls, a bump allocator, SHA-256, and the
 * halt sequence that commits the public values.
 *
 * Syscall ABI (sp1-core-executor 6): `ecall` with the syscall id in t0, arguments in a0..a2,
 * result in t0. At halt SP1 expects the SHA-256 of everything written to fd 13 as 8 COMMITs of
 * little-endian words, 8 COMMIT_DEFERRED_PROOFS of zero (no deferred proofs), then HALT.
 */
#include "sp1.h"

#define SYS_HALT 0x00
#define SYS_WRITE 0x02
#define SYS_COMMIT 0x10
#define SYS_COMMIT_DEFERRED_PROOFS 0x1A
#define SYS_HINT_LEN 0xF0
#define SYS_HINT_READ 0xF1
#define FD_STDOUT 1
#define FD_PUBLIC_VALUES 13

static uint64_t syscall(uint64_t id, uint64_t a0, uint64_t a1, uint64_t a2) {
    register uint64_t t0 __asm__("t0") = id;
    register uint64_t r0 __asm__("a0") = a0;
    register uint64_t r1 __asm__("a1") = a1;
    register uint64_t r2 __asm__("a2") = a2;
    __asm__ volatile("ecall" : "+r"(t0) : "r"(r0), "r"(r1), "r"(r2) : "memory");
    return t0;
}

/* ---- memory ---------------------------------------------------------------------------- */

extern char _end[]; /* guest.ld: the end of .bss; the heap grows up from here */
static uintptr_t heap_next;

void *sp1_alloc(size_t len) {
    if (heap_next == 0) heap_next = ((uintptr_t)_end + 7) & ~(uintptr_t)7;
    void *p = (void *)heap_next;
    heap_next = (heap_next + len + 7) & ~(uintptr_t)7;
    return p;
}

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

/* ---- SHA-256 ----------------------------------------------------------------------------- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(uint32_t s[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

void sp1_sha256_init(sp1_sha256 *h) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h->state, iv, sizeof iv);
    h->bytes = 0;
    h->used = 0;
}

void sp1_sha256_update(sp1_sha256 *h, const void *data, size_t len) {
    const uint8_t *p = data;
    h->bytes += len;
    if (h->used) {
        while (len && h->used < 64) { h->block[h->used++] = *p++; len--; }
        if (h->used < 64) return;
        sha256_block(h->state, h->block);
        h->used = 0;
    }
    for (; len >= 64; p += 64, len -= 64) sha256_block(h->state, p);
    memcpy(h->block, p, len);
    h->used = len;
}

void sp1_sha256_final(sp1_sha256 *h, uint8_t out[32]) {
    uint64_t bits = h->bytes * 8;
    uint8_t pad = 0x80;
    sp1_sha256_update(h, &pad, 1);
    pad = 0;
    while (h->used != 56) sp1_sha256_update(h, &pad, 1);
    uint8_t len_be[8];
    for (int i = 0; i < 8; i++) len_be[i] = (uint8_t)(bits >> (56 - 8 * i));
    sp1_sha256_update(h, len_be, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)h->state[i];
    }
}

/* ---- I/O and halt ----------------------------------------------------------------------- */

static sp1_sha256 public_values;

int64_t sp1_hint_len(void) {
    uint64_t len = syscall(SYS_HINT_LEN, 0, 0, 0);
    return len == UINT64_MAX ? -1 : (int64_t)len;
}

void *sp1_read_hint(size_t *len) {
    int64_t n = sp1_hint_len();
    if (n < 0) return 0;
    /* HINT_READ writes whole words: len/8 + 1 of them, at an 8-aligned address. */
    void *buf = sp1_alloc(((size_t)n / 8 + 1) * 8);
    syscall(SYS_HINT_READ, (uint64_t)buf, (uint64_t)n, 0);
    *len = (size_t)n;
    return buf;
}

void sp1_commit(const void *bytes, size_t len) {
    syscall(SYS_WRITE, FD_PUBLIC_VALUES, (uint64_t)bytes, len);
    sp1_sha256_update(&public_values, bytes, len);
}

void sp1_print(const char *text) {
    size_t n = 0;
    while (text[n]) n++;
    syscall(SYS_WRITE, FD_STDOUT, (uint64_t)text, n);
}

_Noreturn void sp1_exit(int code) {
    uint8_t digest[32];
    sp1_sha256_final(&public_values, digest);
    for (int i = 0; i < 8; i++) {
        uint32_t word = (uint32_t)digest[4 * i] | (uint32_t)digest[4 * i + 1] << 8 |
                        (uint32_t)digest[4 * i + 2] << 16 | (uint32_t)digest[4 * i + 3] << 24;
        syscall(SYS_COMMIT, (uint64_t)i, word, 0);
    }
    for (int i = 0; i < 8; i++) syscall(SYS_COMMIT_DEFERRED_PROOFS, (uint64_t)i, 0, 0);
    syscall(SYS_HALT, (uint64_t)(code & 0xff), 0, 0);
    for (;;) {
    }
}

void __start(void) {
    sp1_sha256_init(&public_values);
    sp1_exit(main());
}
