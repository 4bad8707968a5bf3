/*
 * Fibonacci: one hint, n as a 4-byte little-endian u32. Public values (20 bytes):
 * n (u32 LE), fib(n) and fib(n+1) (u64 LE, wrapping), with fib(0) = 0, fib(1) = 1.
 * Exit code 1 if the hint is missing or not 4 bytes.
 */
#include "sp1.h"

int main(void) {
    size_t len;
    const uint8_t *hint = sp1_read_hint(&len);
    if (!hint || len != 4) return 1;
    uint32_t n = (uint32_t)hint[0] | (uint32_t)hint[1] << 8 | (uint32_t)hint[2] << 16 |
                 (uint32_t)hint[3] << 24;
    uint64_t a = 0, b = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    sp1_commit(&n, 4);
    sp1_commit(&a, 8);
    sp1_commit(&b, 8);
    return 0;
}
