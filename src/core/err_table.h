/*
 * err_table.h - the one list of error codes: X(NAME, retriable, description).
 *
 * It generates enum rts_err, rts_err_name(), rts_err_desc() and
 * rts_err_is_retriable() (what circuit breakers count), and docs/ERRORS.md
 * through `rtscore help errors`. Add a code here and nowhere else.
 */
#ifndef RTS_CORE_ERR_TABLE_H
#define RTS_CORE_ERR_TABLE_H

#define RTS_ERR_TABLE(X)                                                                           \
    X(OK, 0, "success")                                                                            \
    X(NOMEM, 1, "out of memory")                                                                   \
    X(INVAL, 0, "invalid argument or configuration")                                               \
    X(PARSE, 0, "malformed input")                                                                 \
    X(LIMIT, 0, "configured limit reached")                                                        \
    X(IO, 1, "I/O error")                                                                          \
    X(TIMEOUT, 1, "operation timed out")                                                           \
    X(UNAVAIL, 1, "dependency unavailable")                                                        \
    X(AGAIN, 1, "would block, try again")                                                          \
    X(EOF, 0, "end of input")                                                                      \
    X(MODEL, 0, "model evaluation failed")                                                         \
    X(CONFLICT, 0, "not possible in the current state")

#endif /* RTS_CORE_ERR_TABLE_H */
