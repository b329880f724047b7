/*
 * common.h: return codes, small macros and helpers shared by every module.
 */
#ifndef MQLB_COMMON_H
#define MQLB_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MQLB_VERSION    "0.1.0"

#define MQ_OK           0       /* success */
#define MQ_ERR          -1      /* failure, errno is meaningful */
#define MQ_AGAIN        -2      /* would block, try later */

#define MQ_ERR_LEN      256     /* size of caller-supplied error buffers */

#define MQ_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define MQ_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define MQ_NELEMS(a)    (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Free <p> and clear the pointer on the same line (haproxy style 13.2). */
#define mq_free(p)      do { free(p); (p) = NULL; } while (0)

#ifdef MQ_DEBUG
#include <assert.h>
#define ASSERT(x)       assert(x)
#else
#define ASSERT(x)       ((void)0)
#endif

/* Monotonic and wall clocks in milliseconds. */
uint64_t mq_now_ms(void);
uint64_t mq_now_us(void);
uint64_t mq_wall_ms(void);

/* <ms> milliseconds in seconds, as libev's ev_tstamp counts time. */
static inline double
mq_secs(uint64_t ms)
{
    return (double)ms / 1000.0;
}

/*
 * <src> into <dst> of <cap> (> 0) bytes, cut to fit and NUL-ended: what
 * snprintf(dst, cap, "%s", src) writes, without its format parsing (the
 * snapshots copy several names per backend, a thousand backends a time).
 */
static inline void
mq_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The splitmix64 finaliser: spreads any 64-bit value over all bits. */
static inline uint64_t
mq_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

#endif /* MQLB_COMMON_H */
