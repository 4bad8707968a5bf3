/* The C runtime of provernet's SP1 guests (rt.c): hints in, public values out. */
#ifndef PROVERNET_SP1_H
#define PROVERNET_SP1_H

#include <stddef.h>
#include <stdint.h>

/* The guest's entry: its return value (mod 256) is the exit code; 0 is success. */
int main(void);

/* Length in bytes of the next hint, or -1 when the hints are exhausted. */
int64_t sp1_hint_len(void);
/* Reads the next hint into fresh memory and stores its length in *len; NULL when exhausted. */
void *sp1_read_hint(size_t *len);
/* Appends bytes to the public values (fd 13); their SHA-256 is committed at halt. */
void sp1_commit(const void *bytes, size_t len);
/* Halts now with `code` (0 = success), committing the public values written so far. */
_Noreturn void sp1_exit(int code);
/* Writes to the host's stdout (fd 1), for debugging. */
void sp1_print(const char *text);

/* Bump allocation, 8-byte aligned, never freed (guests are short-lived). */
void *sp1_alloc(size_t len);

/* SHA-256, used for the public values' commitment; guests may use it too. */
typedef struct {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} sp1_sha256;
void sp1_sha256_init(sp1_sha256 *h);
void sp1_sha256_update(sp1_sha256 *h, const void *data, size_t len);
void sp1_sha256_final(sp1_sha256 *h, uint8_t out[32]);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
