/* What tiny.c offers the tiny guest's other files. */
#pragma once
#include <stdint.h>

void __attribute__((noreturn)) finish(uint8_t status);
void puts_serial(const char* s);
void put_hex(uint32_t v);
int starts_with(const char* s, const char* p);
uint64_t parse_u64(const char* s);
uint64_t rdtsc(void);
/* Runs at CPL3 (IOPL 3): arg is the command line. */
void __attribute__((noreturn)) virtio_main(uint64_t cmdline);
