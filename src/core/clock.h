/*
 * clock.h - the two clocks: monotonic nanoseconds for latencies, wall-clock
 * milliseconds for ingest time. Both are vDSO calls (~20 ns), no syscall.
 */
#ifndef RTS_CORE_CLOCK_H
#define RTS_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t rts_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int64_t rts_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* RTS_CORE_CLOCK_H */
