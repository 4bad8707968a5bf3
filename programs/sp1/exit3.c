/* Halts with exit code 3 after committing one byte: a guest that fails, for tests. */
#include "sp1.h"

int main(void) {
    uint8_t marker = 0xee;
    sp1_commit(&marker, 1);
    return 3;
}
