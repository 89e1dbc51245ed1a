/*
 * wrap_alloc.h - count the allocations of the code under test. A test that
 * includes this header is linked with --wrap=malloc,calloc,realloc
 * (CMakeLists.txt), so every malloc, calloc and realloc of the project's code
 * goes through the counter below; a test reads wrap_allocs before and after
 * the code that must not allocate. Include it in one file per test binary.
 */
#ifndef RTS_TESTS_WRAP_ALLOC_H
#define RTS_TESTS_WRAP_ALLOC_H

#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static _Atomic long wrap_allocs;

void *__wrap_malloc(size_t n)
{
    atomic_fetch_add(&wrap_allocs, 1);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    atomic_fetch_add(&wrap_allocs, 1);
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    atomic_fetch_add(&wrap_allocs, 1);
    return __real_realloc(p, n);
}

#endif /* RTS_TESTS_WRAP_ALLOC_H */
