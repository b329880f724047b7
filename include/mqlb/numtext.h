/*
 * numtext.h: numbers as decimal text, byte for byte what printf writes,
 * without printf's cost. /metrics prints tens of numbers per backend, and
 * at a thousand backends vsnprintf's format parsing was nearly all of the
 * render's CPU.
 */
#ifndef MQLB_NUMTEXT_H
#define MQLB_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest text of any writer below (no NUL is written). */
#define NUMTEXT_MAX     32

/* <v> as "%" PRIu64; returns the length written to <out>. */
size_t numtext_u64(char *out, uint64_t v);

/* Thousandths <v> as "%" PRIu64 ".%03u" of v / 1000 and v % 1000
 * ("61.500", "0.012"): milliseconds as seconds. */
size_t numtext_milli(char *out, uint64_t v);

/* Microseconds <us> as seconds in the shortest exact form: "60", "0.0025",
 * "1.234567" (no trailing zeros, no point for whole seconds). */
size_t numtext_micro(char *out, uint64_t us);

#endif /* MQLB_NUMTEXT_H */
