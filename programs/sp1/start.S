# Entry point of an SP1 guest: set the global and stack pointers, then run __start (rt.c),
# which calls main() and halts. SP1 starts at the ELF entry with every register zero.
    .section .text._start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    li      sp, 0x78000000      # the stack grows down from STACK_TOP; the image sits above it
    call    __start
1:  j       1b                  # __start never returns
