/*
 * SHA-256 of a byte buffer: one hint, the bytes (any length). Public values (80 bytes): the
 * length (u64 LE), the sum of the bytes (u64 LE) and the SHA-256 digest (32 bytes), then the
 * digest again hashed once more (32 bytes), so the output checks the whole input.
 * Exit code 1 if the hint is missing.
 */
#include "sp1.h"

int main(void) {
    size_t len;
    const uint8_t *data = sp1_read_hint(&len);
    if (!data) return 1;
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i++) sum += data[i];
    sp1_sha256 h;
    uint8_t digest[32], again[32];
    sp1_sha256_init(&h);
    sp1_sha256_update(&h, data, len);
    sp1_sha256_final(&h, digest);
    sp1_sha256_init(&h);
    sp1_sha256_update(&h, digest, 32);
    sp1_sha256_final(&h, again);
    uint64_t len64 = len;
    sp1_commit(&len64, 8);
    sp1_commit(&sum, 8);
    sp1_commit(digest, 32);
    sp1_commit(again, 32);
    return 0;
}
