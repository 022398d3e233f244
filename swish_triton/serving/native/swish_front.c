/*
 * swish-front: the embedded server's checking front, in C.
 *
 * The launcher (swish_triton/serving/native_front.py) starts this program, which binds the public HTTP and gRPC
 * ports and relays every connection to tritonserver's private 127.0.0.1 ports. Before an inference request goes on,
 * its tensor shapes are checked against the bytes it carries: tritonserver 2.51 multiplies shape dimensions without
 * overflow checks, and some such requests crash it or kill a Python-backend stub (docs/security.md). A refused
 * request gets HTTP 400 or gRPC INVALID_ARGUMENT with the reason; everything else passes unchanged.
 *
 * The rules are those of request_guard.py (the pure-Python front, used where no C compiler is found): every
 * dimension is a non-negative int64; elements and bytes are computed exactly (128-bit) and must stay within
 * --max-tensor-bytes and match what the request carries (JSON elements, binary bytes, raw gRPC bytes or a
 * shared-memory byte size).
 *
 * HTTP/1.1: one request at a time per connection (keep-alive and pipelining keep their order); the JSON of an
 * inference request (the whole body, or the part before the binary data) is parsed and checked; chunked bodies are
 * forwarded with a Content-Length (tritonserver sees exactly the bytes that were checked); /v2/health/ready and a
 * reloading model's ready endpoint are answered from the launcher's view.
 * gRPC: HTTP/2 frames are relayed as they are; the request DATA of each stream is reassembled into gRPC messages and
 * each complete message is scanned as a ModelInferRequest (only that message of the service has field 5, inputs)
 * before the frame completing it goes on. A refused message's last frame is held back: tritonserver gets
 * RST_STREAM, the client a trailers-only INVALID_ARGUMENT and the flow-control credit of the dropped bytes.
 *
 * Connections are spread over --threads worker threads (one event loop each; default 1).
 *
 * Control, one line each on stdin: "ready 0|1", "sick MODEL", "well MODEL", "inflight" (answers "inflight N" on
 * stdout), "drain SECONDS" (stop accepting, GOAWAY to gRPC clients, wait for requests in flight, answer
 * "drained 1|0" and exit). End of stdin (the launcher is gone) ends the program at once. On start it prints
 * "bound" once both ports are bound, or "error PORT MESSAGE" and exits 2.
 *
 * Build: cc -O2 -pthread -o swish-front swish_front.c -lz   (without zlib: add -DSWISH_FRONT_NO_ZLIB; compressed inference
 * requests are then refused with a message saying so).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef SWISH_FRONT_NO_ZLIB
#include <zlib.h>
#endif

#define MAX_HEAD_BYTES (64 * 1024)
#define HIGH_WATER (8u << 20) /* stop reading one side while this much waits to be written to the other */
#define READ_CHUNK (256 * 1024)
#define MAX_JSON_DEPTH 512
#define MAX_MODELS 256

typedef unsigned __int128 u128;

/* ---------------------------------------------------------------------------------------------------------------
 * Settings and the launcher's view
 * ------------------------------------------------------------------------------------------------------------- */

static struct {
    u128 max_tensor_bytes;
    size_t max_body_bytes;
    char http_upstream[128], grpc_upstream[128];
    _Atomic bool ready, draining;
    pthread_mutex_t sick_lock; /* the control thread writes the list, workers read it */
    char *sick[MAX_MODELS];
    int nsick;
} g = {.max_tensor_bytes = (u128)1 << 30, .max_body_bytes = (size_t)1 << 30, .sick_lock = PTHREAD_MUTEX_INITIALIZER};

static bool is_sick_locked(const char *name, size_t len) {
    for (int i = 0; i < g.nsick; i++)
        if (strlen(g.sick[i]) == len && memcmp(g.sick[i], name, len) == 0) return true;
    return false;
}

static bool is_sick(const char *name, size_t len) {
    pthread_mutex_lock(&g.sick_lock);
    bool sick = is_sick_locked(name, len);
    pthread_mutex_unlock(&g.sick_lock);
    return sick;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Growable byte buffer: data lives in p[off, len).
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t off, len, cap;
} buf_t;

static size_t buf_size(const buf_t *b) { return b->len - b->off; }
static char *buf_data(const buf_t *b) { return b->p + b->off; }

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + extra <= b->cap) return;
    if (b->off) { /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap) return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "swish-front: out of memory\n");
        exit(3);
    }
    b->p = p;
    b->cap = cap;
}

static void buf_add(buf_t *b, const void *data, size_t n) {
    if (!n) return;
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_printf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_eat(buf_t *b, size_t n) {
    b->off += n;
    if (b->off >= b->len) b->off = b->len = 0;
}

static void buf_clear(buf_t *b) { b->off = b->len = 0; }

static void buf_free(buf_t *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* A decimal rendering of a 128-bit count. */
static const char *u128_str(u128 v, char out[48]) {
    char tmp[48];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return out;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The shape check shared by HTTP and gRPC (request_guard.check_tensor)
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct {
    char text[512]; /* the shape as the message shows it, e.g. "[1, 4611686018427387904]" */
    size_t text_len;
    u128 elements;
    bool huge;     /* the element count is above 2^127 */
    bool zero;     /* a dimension is 0: no elements, however large the others */
    bool bad;      /* a dimension outside 0..2^63-1 */
    char bad_dim[64];
} shape_t;

static void shape_begin(shape_t *s) {
    memset(s, 0, sizeof *s);
    s->elements = 1;
    s->text[0] = '[';
    s->text_len = 1;
}

static void shape_text(shape_t *s, const char *t, size_t n) {
    if (s->text_len + n + 8 >= sizeof s->text) { /* absurdly long shapes are shown cut short */
        if (s->text_len + 4 < sizeof s->text && s->text[s->text_len - 1] != '.') {
            memcpy(s->text + s->text_len, "...", 3);
            s->text_len += 3;
        }
        return;
    }
    memcpy(s->text + s->text_len, t, n);
    s->text_len += n;
}

/* One dimension; `digits` is its decimal text (for values beyond int64, where `fits` is false). */
static void shape_dim(shape_t *s, bool negative, uint64_t value, bool fits, const char *digits, size_t ndigits) {
    char tmp[32];
    if (s->text_len > 1) shape_text(s, ", ", 2);
    if (negative) shape_text(s, "-", 1);
    if (fits) {
        int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)value);
        shape_text(s, tmp, (size_t)n);
    } else {
        shape_text(s, digits, ndigits);
    }
    bool out_of_range = negative ? (value != 0 || !fits) : (!fits || value > (uint64_t)INT64_MAX);
    if (out_of_range && !s->bad) {
        s->bad = true;
        if (fits) snprintf(s->bad_dim, sizeof s->bad_dim, "%s%llu", negative ? "-" : "", (unsigned long long)value);
        else snprintf(s->bad_dim, sizeof s->bad_dim, "%s%.*s", negative ? "-" : "", (int)(ndigits > 40 ? 40 : ndigits), digits);
    }
    if (out_of_range) return;
    if (value == 0) {
        s->zero = true;
        return;
    }
    if (s->huge) return;
    if (s->elements > (~(u128)0 >> 1) / value) {
        s->huge = true;
        return;
    }
    s->elements *= value;
}

static void shape_end(shape_t *s) {
    if (s->zero) s->elements = 0, s->huge = false;
    shape_text(s, "]", 1);
    s->text[s->text_len] = 0;
}

static int datatype_size(const char *dt, size_t n) {
    static const struct {
        const char *name;
        int size;
    } sizes[] = {{"BOOL", 1},   {"UINT8", 1},  {"INT8", 1},  {"UINT16", 2}, {"INT16", 2},
                 {"FP16", 2},   {"BF16", 2},   {"UINT32", 4}, {"INT32", 4},  {"FP32", 4},
                 {"UINT64", 8}, {"INT64", 8},  {"FP64", 8}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (strlen(sizes[i].name) == n && memcmp(sizes[i].name, dt, n) == 0) return sizes[i].size;
    return 0; /* BYTES or unknown: no fixed size */
}

/* Returns false and fills `why` when the tensor must be refused. supplied_* < 0: not known. */
static bool check_tensor(const char *name, size_t name_len, const char *dt, size_t dt_len, const shape_t *s,
                         long long supplied_bytes, long long supplied_elements, char *why, size_t why_len) {
    char e[48], b[48], m[48];
    int n = snprintf(why, why_len, "input '%.*s': ", (int)(name_len > 200 ? 200 : name_len), name);
    why += n;
    why_len -= (size_t)n;
    if (s->bad) {
        snprintf(why, why_len, "shape %s has dimension %s outside 0..2^63-1", s->text, s->bad_dim);
        return false;
    }
    int item = datatype_size(dt, dt_len);
    u128 nbytes = s->elements * (u128)(item ? item : 4); /* BYTES elements take at least a 4-byte length prefix */
    if (s->huge || s->elements > (~(u128)0 >> 4) || nbytes > g.max_tensor_bytes) {
        snprintf(why, why_len, "shape %s of %.*s is %s elements (%s bytes), above the limit of %s bytes per input",
                 s->text, (int)(dt_len > 40 ? 40 : dt_len), dt, s->huge ? "over 2^127" : u128_str(s->elements, e),
                 s->huge || s->elements > (~(u128)0 >> 4) ? "over 2^127" : u128_str(nbytes, b),
                 u128_str(g.max_tensor_bytes, m));
        return false;
    }
    if (supplied_elements >= 0 && (u128)supplied_elements != s->elements) {
        snprintf(why, why_len, "shape %s is %s elements but the request carries %lld", s->text,
                 u128_str(s->elements, e), supplied_elements);
        return false;
    }
    if (supplied_bytes >= 0 && item && (u128)supplied_bytes != nbytes) {
        snprintf(why, why_len, "shape %s of %.*s is %s bytes but the request carries %lld", s->text,
                 (int)(dt_len > 40 ? 40 : dt_len), dt, u128_str(nbytes, b), supplied_bytes);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------------------------
 * JSON: a strict validator plus the few lookups the check needs (request_guard.check_json_request)
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    int depth;
    const char *err;
} json_t;

static void jws(json_t *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool jfail(json_t *j, const char *why) {
    if (!j->err) j->err = why;
    return false;
}

static bool jlit(json_t *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return jfail(j, "unexpected character");
    j->p += n;
    return true;
}

static bool jstring(json_t *j) { /* at '"' */
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') return true;
        if (c < 0x20) return jfail(j, "control character in a string");
        if (c == '\\') {
            if (j->p >= j->end) break;
            char esc = *j->p++;
            if (esc == 'u') {
                for (int i = 0; i < 4; i++, j->p++)
                    if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p) || !*j->p)
                        return jfail(j, "bad \\u escape");
            } else if (!strchr("\"\\/bfnrt", esc) || !esc) {
                return jfail(j, "bad escape");
            }
        }
    }
    return jfail(j, "unterminated string");
}

static bool jnumber(json_t *j, bool *integer) {
    const char *start = j->p;
    *integer = true;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == 'I') return jlit(j, "Infinity") && (*integer = false, true);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jfail(j, "bad number");
    if (*j->p == '0') j->p++;
    else
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    if (j->p < j->end && *j->p == '.') {
        *integer = false;
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jfail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        *integer = false;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jfail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    return j->p > start;
}

/* Skips one value; counts the scalars inside arrays into *elements when it is not NULL. */
static bool jvalue(json_t *j, uint64_t *elements) {
    jws(j);
    if (j->p >= j->end) return jfail(j, "unexpected end");
    bool integer;
    switch (*j->p) {
    case '{':
        if (++j->depth > MAX_JSON_DEPTH) return jfail(j, "nested too deep");
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            j->depth--;
            break;
        }
        for (;;) {
            jws(j);
            if (j->p >= j->end || *j->p != '"') return jfail(j, "expected a key");
            if (!jstring(j)) return false;
            jws(j);
            if (j->p >= j->end || *j->p++ != ':') return jfail(j, "expected ':'");
            if (!jvalue(j, NULL)) return false;
            jws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == '}') {
                j->p++;
                break;
            }
            return jfail(j, "expected ',' or '}'");
        }
        j->depth--;
        if (elements) (*elements)++;
        return true;
    case '[':
        if (++j->depth > MAX_JSON_DEPTH) return jfail(j, "nested too deep");
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            j->depth--;
            return true; /* an empty array holds no elements */
        }
        for (;;) {
            if (!jvalue(j, elements)) return false;
            jws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == ']') {
                j->p++;
                break;
            }
            return jfail(j, "expected ',' or ']'");
        }
        j->depth--;
        return true;
    case '"':
        if (!jstring(j)) return false;
        break;
    case 't': if (!jlit(j, "true")) return false; break;
    case 'f': if (!jlit(j, "false")) return false; break;
    case 'n': if (!jlit(j, "null")) return false; break;
    case 'N': if (!jlit(j, "NaN")) return false; break; /* Python's json (the other front) takes these three */
    default:
        if (!jnumber(j, &integer)) return false;
    }
    if (elements) (*elements)++;
    return true;
}

/* The key at j->p (a '"'), as written (escapes undecoded: none of the keys we look for has one); advances past it. */
static void jkey(json_t *j, const char **raw, size_t *raw_len) {
    const char *start = j->p + 1;
    jstring(j);
    *raw = start;
    *raw_len = (size_t)(j->p - 1 - start);
}

/* Visits the members of the object at j->p: cb(key, key_len, value position) for each, the latest duplicate last. */
typedef void (*member_fn)(void *ctx, const char *key, size_t key_len, const char *value, const char *end);

static bool jmembers(json_t *j, member_fn cb, void *ctx) {
    jws(j);
    if (j->p >= j->end || *j->p != '{') return false;
    j->p++;
    jws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        const char *raw = "";
        size_t raw_len = 0;
        jws(j);
        jkey(j, &raw, &raw_len);
        jws(j);
        j->p++; /* ':' (validated already) */
        jws(j);
        const char *value = j->p;
        jvalue(j, NULL);
        cb(ctx, raw, raw_len, value, j->end);
        jws(j);
        if (*j->p++ == '}') return true;
    }
}

typedef struct {
    const char *inputs;
} top_t;

static void top_member(void *ctx, const char *key, size_t n, const char *value, const char *end) {
    (void)end;
    if (n == 6 && memcmp(key, "inputs", 6) == 0) ((top_t *)ctx)->inputs = value;
}

typedef struct {
    const char *name, *datatype, *shape, *parameters, *data;
} tensor_t;

static void tensor_member(void *ctx, const char *key, size_t n, const char *value, const char *end) {
    (void)end;
    tensor_t *t = ctx;
    if (n == 4 && !memcmp(key, "name", 4)) t->name = value;
    else if (n == 8 && !memcmp(key, "datatype", 8)) t->datatype = value;
    else if (n == 5 && !memcmp(key, "shape", 5)) t->shape = value;
    else if (n == 10 && !memcmp(key, "parameters", 10)) t->parameters = value;
    else if (n == 4 && !memcmp(key, "data", 4)) t->data = value;
}

typedef struct {
    const char *binary_data_size, *shared_memory_byte_size;
} params_t;

static void params_member(void *ctx, const char *key, size_t n, const char *value, const char *end) {
    (void)end;
    params_t *p = ctx;
    if (n == 16 && !memcmp(key, "binary_data_size", 16)) p->binary_data_size = value;
    else if (n == 23 && !memcmp(key, "shared_memory_byte_size", 23)) p->shared_memory_byte_size = value;
}

/* The text of a JSON value (a string without its quotes), for messages. */
static void jtext(const char *value, const char *end, const char **out, size_t *len) {
    json_t j = {.p = value, .end = end};
    jvalue(&j, NULL);
    *out = value;
    *len = (size_t)(j.p - value);
    if (*len >= 2 && value[0] == '"') {
        (*out)++;
        *len -= 2;
    }
}

/* A non-negative integer parameter; -1 if absent; -2 (and why) if present but not one. */
static long long jint_param(const char *value, const char *end, const char *key, char *why, size_t why_len) {
    if (!value) return -1;
    json_t j = {.p = value, .end = end};
    if (*value == 'n') return -1; /* null: as if absent */
    bool integer = false;
    const char *start = j.p;
    if ((*value == '-' || (*value >= '0' && *value <= '9')) && jnumber(&j, &integer) && integer && *start != '-') {
        errno = 0;
        long long v = strtoll(start, NULL, 10);
        if (errno == 0) return v;
    }
    const char *text;
    size_t len;
    jtext(value, end, &text, &len);
    snprintf(why, why_len, "parameter %s must be a non-negative integer, got %.*s", key, (int)(len > 60 ? 60 : len),
             text);
    return -2;
}

static bool jparse_shape(const char *value, const char *end, shape_t *s, const char *name, size_t name_len, char *why,
                         size_t why_len) {
    shape_begin(s);
    json_t j = {.p = value, .end = end};
    const char *text;
    size_t len;
    bool ok = value && *value == '[';
    if (ok) {
        j.p++;
        jws(&j);
        if (*j.p == ']') j.p++;
        else
            for (;;) {
                jws(&j);
                const char *start = j.p;
                bool integer = false;
                if (!(*j.p == '-' || (*j.p >= '0' && *j.p <= '9')) || !jnumber(&j, &integer) || !integer) {
                    ok = false;
                    break;
                }
                bool negative = *start == '-';
                const char *digits = start + negative;
                size_t nd = (size_t)(j.p - digits);
                uint64_t v = 0;
                bool fits = nd <= 20;
                for (size_t i = 0; fits && i < nd; i++) {
                    unsigned d = (unsigned)(digits[i] - '0');
                    if (v > (UINT64_MAX - d) / 10) fits = false;
                    else v = v * 10 + d;
                }
                shape_dim(s, negative, v, fits, digits, nd);
                jws(&j);
                if (*j.p == ',') {
                    j.p++;
                    continue;
                }
                j.p++; /* ']' */
                break;
            }
    }
    if (!ok) {
        static const char null_text[] = "null";
        jtext(value ? value : null_text, value ? end : null_text + 4, &text, &len);
        snprintf(why, why_len, "input '%.*s': shape must be a list of integers, got %.*s",
                 (int)(name_len > 200 ? 200 : name_len), name, (int)(len > 200 ? 200 : len), text);
        return false;
    }
    shape_end(s);
    return true;
}

/* Checks the JSON of an HTTP inference request. Returns false with the reason when it must be refused. */
static bool check_json_request(const char *p, size_t n, char *why, size_t why_len) {
    json_t j = {.p = p, .end = p + n};
    if (!jvalue(&j, NULL) || (jws(&j), j.p != j.end)) {
        snprintf(why, why_len, "the request's JSON does not parse: %s at byte %zu", j.err ? j.err : "extra data",
                 (size_t)(j.p - p));
        return false;
    }
    j.p = p;
    jws(&j);
    if (*j.p != '{') {
        snprintf(why, why_len, "the request body must be a JSON object");
        return false;
    }
    top_t top = {0};
    jmembers(&j, top_member, &top);
    if (!top.inputs || *top.inputs != '[') {
        snprintf(why, why_len, "the request must have an 'inputs' list");
        return false;
    }
    json_t a = {.p = top.inputs + 1, .end = p + n};
    jws(&a);
    if (*a.p == ']') return true;
    for (;;) {
        jws(&a);
        if (*a.p != '{') {
            snprintf(why, why_len, "each entry of 'inputs' must be a JSON object");
            return false;
        }
        tensor_t t = {0};
        jmembers(&a, tensor_member, &t);
        const char *name = "?", *dt = "";
        size_t name_len = 1, dt_len = 0;
        if (t.name) jtext(t.name, j.end, &name, &name_len);
        if (t.datatype) jtext(t.datatype, j.end, &dt, &dt_len);
        if (t.datatype && *t.datatype != '"') dt_len = 0, dt = ""; /* not a string: no known size */
        params_t prm = {0};
        if (t.parameters && *t.parameters == '{') {
            json_t pj = {.p = t.parameters, .end = j.end};
            jmembers(&pj, params_member, &prm);
        }
        long long bin = jint_param(prm.binary_data_size, j.end, "binary_data_size", why, why_len);
        if (bin == -2) return false;
        long long shm = jint_param(prm.shared_memory_byte_size, j.end, "shared_memory_byte_size", why, why_len);
        if (shm == -2) return false;
        long long elements = -1;
        if (bin < 0 && shm < 0) {
            if (!t.data) {
                snprintf(why, why_len, "input '%.*s' has no data, binary_data_size or shared memory region",
                         (int)(name_len > 200 ? 200 : name_len), name);
                return false;
            }
            uint64_t count = 0;
            json_t dj = {.p = t.data, .end = j.end};
            if (*t.data == '[') jvalue(&dj, &count);
            else count = 1;
            elements = (long long)count;
        }
        shape_t s;
        if (!jparse_shape(t.shape, j.end, &s, name, name_len, why, why_len) ||
            !check_tensor(name, name_len, dt, dt_len, &s, bin >= 0 ? bin : shm, elements, why, why_len))
            return false;
        jws(&a);
        if (*a.p == ',') {
            a.p++;
            continue;
        }
        return true;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Decompression (HTTP Content-Encoding, gRPC compressed messages)
 * ------------------------------------------------------------------------------------------------------------- */

#ifndef SWISH_FRONT_NO_ZLIB
/* Inflates gzip, zlib or raw deflate data into out, at most `limit` bytes. */
static bool inflate_any(const char *in, size_t n, size_t limit, buf_t *out) {
    static const int wbits[] = {31, 15, -15};
    for (int w = 0; w < 3; w++) {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, wbits[w]) != Z_OK) return false;
        buf_clear(out);
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)n;
        int rc = Z_OK;
        while (rc == Z_OK) {
            buf_reserve(out, 64 * 1024);
            z.next_out = (Bytef *)(out->p + out->len);
            z.avail_out = 64 * 1024;
            rc = inflate(&z, Z_NO_FLUSH);
            out->len += 64 * 1024 - z.avail_out;
            if (buf_size(out) > limit) {
                rc = Z_DATA_ERROR;
                break;
            }
            if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
        }
        inflateEnd(&z);
        if (rc == Z_STREAM_END) return true;
    }
    return false;
}
#endif

/* ---------------------------------------------------------------------------------------------------------------
 * gRPC: protobuf wire-format scan of ModelInferRequest (request_guard.check_grpc_request)
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} pb_t;

static bool pb_field(pb_t *b, uint32_t *field, int *wt, pb_t *payload, uint64_t *value);

static bool pb_varint(pb_t *b, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return true;
    }
    return false;
}

/* Next field: its number and wire type, and for length-delimited fields the payload. */
static bool pb_field(pb_t *b, uint32_t *field, int *wt, pb_t *payload, uint64_t *value) {
    uint64_t key;
    if (!pb_varint(b, &key)) return false;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return pb_varint(b, value);
    case 1:
        if (b->end - b->p < 8) return false;
        b->p += 8;
        return true;
    case 5:
        if (b->end - b->p < 4) return false;
        b->p += 4;
        return true;
    case 2: {
        uint64_t len;
        if (!pb_varint(b, &len) || len > (uint64_t)(b->end - b->p)) return false;
        payload->p = b->p;
        payload->end = b->p + len;
        b->p += len;
        return true;
    }
    case 4: return true; /* end of a group: the caller that opened it checks the number */
    case 3: { /* a group (deprecated, but parsers still skip unknown ones): skip to its end */
        static __thread int depth;
        if (++depth > 64) {
            depth--;
            return false;
        }
        uint32_t f;
        int wt;
        pb_t pl;
        uint64_t v;
        bool ok = false;
        while (b->p < b->end && pb_field(b, &f, &wt, &pl, &v)) {
            if (wt == 4) {
                ok = f == *field;
                break;
            }
        }
        depth--;
        return ok;
    }
    default: return false; /* a stray end-group or an invalid wire type: not parseable */
    }
}

static uint64_t count_varints(pb_t b) {
    uint64_t n = 0;
    for (; b.p < b.end; b.p++)
        if (!(*b.p & 0x80)) n++;
    return n;
}

#define MAX_GRPC_INPUTS 1024

typedef struct {
    pb_t name, datatype;
    bool has_shm_region;
    long long shm_bytes;
    uint64_t elements;
    shape_t shape;
} grpc_input_t;

static bool grpc_parse_input(pb_t b, grpc_input_t *in) {
    memset(in, 0, sizeof *in);
    shape_begin(&in->shape);
    uint32_t f;
    int wt;
    pb_t pl;
    uint64_t v;
    while (b.p < b.end) {
        if (!pb_field(&b, &f, &wt, &pl, &v)) return false;
        if (f == 1 && wt == 2) in->name = pl;
        else if (f == 2 && wt == 2) in->datatype = pl;
        else if (f == 3 && (wt == 0 || wt == 2)) { /* int64 shape, unpacked or packed */
            pb_t dims = wt == 2 ? pl : (pb_t){0};
            if (wt == 0) shape_dim(&in->shape, (int64_t)v < 0, (int64_t)v < 0 ? (uint64_t)0 - v : v, true, NULL, 0);
            while (wt == 2 && dims.p < dims.end) {
                if (!pb_varint(&dims, &v)) return false;
                bool neg = (int64_t)v < 0;
                shape_dim(&in->shape, neg, neg ? (uint64_t)0 - v : v, true, NULL, 0);
            }
        } else if (f == 4 && wt == 2) { /* map<string, InferParameter> entry */
            pb_t key = {0}, val = {0}, e = pl;
            while (e.p < e.end) {
                uint32_t ef;
                int ewt;
                pb_t epl;
                uint64_t ev;
                if (!pb_field(&e, &ef, &ewt, &epl, &ev)) return false;
                if (ef == 1 && ewt == 2) key = epl;
                if (ef == 2 && ewt == 2) val = epl;
            }
            size_t kl = (size_t)(key.end - key.p);
            if (kl == 20 && !memcmp(key.p, "shared_memory_region", 20)) in->has_shm_region = true;
            if (kl == 23 && !memcmp(key.p, "shared_memory_byte_size", 23)) {
                in->shm_bytes = 0;
                while (val.p < val.end) {
                    uint32_t vf;
                    int vwt;
                    pb_t vpl;
                    uint64_t vv;
                    if (!pb_field(&val, &vf, &vwt, &vpl, &vv)) return false;
                    if (vf == 2 && vwt == 0) in->shm_bytes = (long long)vv; /* int64_param */
                }
            }
        } else if (f == 5 && wt == 2) { /* InferTensorContents */
            pb_t c = pl;
            while (c.p < c.end) {
                uint32_t cf;
                int cwt;
                pb_t cpl;
                uint64_t cv;
                if (!pb_field(&c, &cf, &cwt, &cpl, &cv)) return false;
                if (cf >= 1 && cf <= 5) in->elements += cwt == 2 ? count_varints(cpl) : 1;
                else if (cf == 6) in->elements += cwt == 2 ? (uint64_t)(cpl.end - cpl.p) / 4 : 1;
                else if (cf == 7) in->elements += cwt == 2 ? (uint64_t)(cpl.end - cpl.p) / 8 : 1;
                else if (cf == 8 && cwt == 2) in->elements += 1;
            }
        }
    }
    shape_end(&in->shape);
    return true;
}

/* Checks one gRPC message (already decompressed). Messages that are not a ModelInferRequest pass. */
static bool check_grpc_message(const uint8_t *p, size_t n, char *why, size_t why_len) {
    /* First pass: is it well-formed, and how many inputs and raw contents does it have? */
    pb_t b = {p, p + n};
    size_t ninputs = 0, nraw = 0;
    uint32_t f;
    int wt;
    pb_t pl;
    uint64_t v;
    while (b.p < b.end) {
        if (!pb_field(&b, &f, &wt, &pl, &v)) return true; /* not parseable: tritonserver refuses it itself */
        if (f == 5 && wt == 2) ninputs++;
        if (f == 7 && wt == 2) nraw++;
    }
    if (!ninputs) return true;
    if (nraw && nraw != ninputs) {
        snprintf(why, why_len, "the request has %zu inputs but %zu raw input contents", ninputs, nraw);
        return false;
    }
    if (ninputs > MAX_GRPC_INPUTS) {
        snprintf(why, why_len, "the request has %zu inputs, more than %d", ninputs, MAX_GRPC_INPUTS);
        return false;
    }
    pb_t *raw = calloc(nraw ? nraw : 1, sizeof *raw);
    if (!raw) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    grpc_input_t in;
    size_t r = 0;
    for (b = (pb_t){p, p + n}; b.p < b.end;) {
        pb_field(&b, &f, &wt, &pl, &v);
        if (f == 7 && wt == 2) raw[r++] = pl;
    }
    bool ok = true;
    size_t i = 0;
    for (b = (pb_t){p, p + n}; ok && b.p < b.end;) {
        pb_field(&b, &f, &wt, &pl, &v);
        if (!(f == 5 && wt == 2)) continue;
        if (!grpc_parse_input(pl, &in)) {
            ok = true; /* malformed: tritonserver's parser refuses the whole message */
            break;
        }
        long long bytes = -1, elements = -1;
        if (in.has_shm_region) bytes = in.shm_bytes;
        else if (nraw) bytes = (long long)(raw[i].end - raw[i].p);
        else elements = (long long)in.elements;
        ok = check_tensor((const char *)in.name.p, (size_t)(in.name.end - in.name.p), (const char *)in.datatype.p,
                          (size_t)(in.datatype.end - in.datatype.p), &in.shape, bytes, elements, why, why_len);
        i++;
    }
    free(raw);
    return ok;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------------------------------- */

enum { TAG_LISTEN_HTTP, TAG_LISTEN_GRPC, TAG_WAKE, TAG_CLIENT, TAG_UPSTREAM };

typedef struct conn conn_t;

typedef struct {
    int kind;
    conn_t *conn;
} tag_t;

typedef struct {
    int fd;
    tag_t tag;
    buf_t out;
    uint32_t events; /* what epoll watches now */
    bool connecting, paused;
} side_t;

typedef struct {
    uint32_t id;
    bool used, tombstone;
    bool in_flight;    /* counted in open_streams: opened by the client, not yet finished by tritonserver or refused */
    bool refused;      /* its request was refused: later DATA is dropped (with its flow-control credit) */
    bool request_done; /* the client's END_STREAM was seen */
    buf_t pending; /* request DATA not yet making a whole gRPC message */
} stream_t;

struct conn {
    bool grpc, dead;
    side_t c, u;
    buf_t in, uin; /* bytes from the client / from tritonserver not yet relayed */
    conn_t *next, *prev;
    /* HTTP */
    bool busy, keep, reused, head_sent, server_close, head_request;
    int attempt;
    long long remaining; /* response body bytes to come; -1 chunked, -2 until close */
    buf_t request;       /* the request with tritonserver, kept for one retry */
    buf_t chunks;        /* a chunked response so far, to see where it ends */
    unsigned ugen;       /* counts connections to tritonserver */
    /* gRPC */
    bool preface_seen;
    stream_t *streams;
    size_t nstreams, cap_streams, open_streams;
};

/* Each worker thread runs its own event loop over the connections it accepted; the listening sockets are shared
 * (EPOLLEXCLUSIVE wakes one worker per connection). The main thread reads the control lines. */
#define MAX_WORKERS 64

typedef struct {
    pthread_t thread;
    int ep, wake;                 /* its epoll; an eventfd the control thread writes to start the drain */
    long http_in_flight, grpc_open; /* read by the control thread */
} worker_t;

static worker_t workers[MAX_WORKERS];
static int nworkers = 1;
static __thread worker_t *self;
static __thread int ep;
static int listen_fd[2] = {-1, -1};
static tag_t listen_tag[2] = {{TAG_LISTEN_HTTP, NULL}, {TAG_LISTEN_GRPC, NULL}};
static tag_t wake_tag = {TAG_WAKE, NULL}; /* a worker's eventfd: the control thread started the drain */
static __thread conn_t *conns;
static __thread conn_t *graveyard; /* closed this round, freed after it (events may still point at them) */

static void count_http(long d) { __atomic_add_fetch(&self->http_in_flight, d, __ATOMIC_RELAXED); }
static void count_grpc(long d) { __atomic_add_fetch(&self->grpc_open, d, __ATOMIC_RELAXED); }

static void watch(side_t *s, uint32_t events) {
    if (s->fd < 0 || s->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = &s->tag};
    epoll_ctl(ep, s->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev);
    s->events = events;
}

static void conn_close(conn_t *c);

static void update_interest(conn_t *c) {
    /* Read from a side unless what it sends to the other side piles up. */
    bool read_client = buf_size(&c->u.out) < HIGH_WATER && !(c->busy && !c->grpc && buf_size(&c->in) > HIGH_WATER);
    bool read_upstream = buf_size(&c->c.out) < HIGH_WATER;
    watch(&c->c, (read_client ? EPOLLIN : 0) | (buf_size(&c->c.out) ? EPOLLOUT : 0) | EPOLLRDHUP);
    if (c->u.fd >= 0)
        watch(&c->u, c->u.connecting ? EPOLLOUT : (read_upstream ? EPOLLIN : 0) | (buf_size(&c->u.out) ? EPOLLOUT : 0));
}

/* Sends what is buffered; false if the peer is gone. */
static bool flush(side_t *s) {
    while (buf_size(&s->out) && !s->connecting) {
        ssize_t n = send(s->fd, buf_data(&s->out), buf_size(&s->out), MSG_NOSIGNAL);
        if (n > 0) {
            buf_eat(&s->out, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
    return true;
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void upstream_close(conn_t *c) {
    if (c->u.fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->u.fd, NULL);
        close(c->u.fd);
    }
    c->u.fd = -1;
    c->u.events = 0;
    c->u.connecting = false;
    buf_clear(&c->u.out);
    buf_clear(&c->uin);
}

static bool upstream_connect(conn_t *c) {
    const char *addr = c->grpc ? g.grpc_upstream : g.http_upstream;
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon) return false;
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return false;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    set_nodelay(fd);
    c->u.fd = fd;
    c->u.events = 0;
    c->u.tag = (tag_t){TAG_UPSTREAM, c};
    c->ugen++;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            c->u.fd = -1;
            return false;
        }
        c->u.connecting = true;
    }
    return true;
}

/* --- HTTP ------------------------------------------------------------------------------------------------------- */

static const char *find_crlf2(const char *p, size_t n) {
    return memmem(p, n, "\r\n\r\n", 4);
}

static void json_escape(buf_t *b, const char *s) {
    buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf_add(b, "\\", 1);
            buf_add(b, s, 1);
        } else if (ch < 0x20 || ch >= 0x7f) {
            buf_printf(b, "\\u%04x", ch);
        } else {
            buf_add(b, s, 1);
        }
    }
    buf_add(b, "\"", 1);
}

static void http_error(buf_t *out, int status, const char *reason, const char *message, bool close) {
    buf_t body = {0};
    if (message) {
        buf_str(&body, "{\"error\": ");
        json_escape(&body, message);
        buf_str(&body, "}");
    }
    buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n", status, reason,
               buf_size(&body), close ? "Connection: close\r\n" : "");
    buf_add(out, buf_data(&body), buf_size(&body));
    buf_free(&body);
}

/* A header's value in a head (case-insensitive name); NULL if absent. */
static const char *header(const char *head, size_t head_len, const char *name, size_t *len) {
    size_t n = strlen(name);
    const char *p = memchr(head, '\n', head_len), *end = head + head_len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            const char *ne = colon;
            while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
            const char *ns = p;
            while (ns < ne && (*ns == ' ' || *ns == '\t')) ns++;
            if ((size_t)(ne - ns) == n && strncasecmp(ns, name, n) == 0) {
                const char *v = colon + 1, *ve = eol;
                while (v < ve && (*v == ' ' || *v == '\t')) v++;
                while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                *len = (size_t)(ve - v);
                return v;
            }
        }
        p = eol;
    }
    return NULL;
}

static bool header_has_ci(const char *head, size_t head_len, const char *name, const char *token) {
    size_t len, tl = strlen(token);
    const char *v = header(head, head_len, name, &len);
    for (size_t i = 0; v && i + tl <= len; i++)
        if (strncasecmp(v + i, token, tl) == 0) return true;
    return false;
}

/* Size of a chunked body starting at p: 1 found (end, de-chunked body in out), 0 need more, -1 malformed,
 * -2 too large. */
static int dechunk(const char *p, size_t n, size_t limit, size_t *end, buf_t *out) {
    size_t pos = 0, total = 0;
    if (out) buf_clear(out);
    for (;;) {
        const char *eol = memmem(p + pos, n - pos, "\r\n", 2);
        if (!eol) return 0;
        char *stop;
        errno = 0;
        unsigned long long size = strtoull(p + pos, &stop, 16);
        if (stop == p + pos || errno) return -1;
        while (stop < eol && (*stop == ' ' || *stop == '\t')) stop++;
        if (stop < eol && *stop != ';') return -1;
        total += size;
        if (size > limit || total > limit) return -2;
        size_t data = (size_t)(eol - p) + 2;
        if (size == 0) {
            const char *fin = memmem(p + (size_t)(eol - p), n - (size_t)(eol - p), "\r\n\r\n", 4);
            if (!fin) return 0;
            *end = (size_t)(fin - p) + 4;
            return 1;
        }
        if (n < data + size + 2) return 0;
        if (out) buf_add(out, p + data, size);
        pos = data + size + 2;
    }
}

static bool path_is(const char *t, size_t n, const char *suffix, const char **model, size_t *model_len) {
    /* ^/v2/models/([^/?]+)(?:/versions/[^/?]+)?/SUFFIX(?:\?.*)?$ */
    const char *q = memchr(t, '?', n);
    size_t len = q ? (size_t)(q - t) : n;
    if (len < 11 || memcmp(t, "/v2/models/", 11) != 0) return false;
    const char *p = t + 11, *end = t + len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash || slash == p) return false;
    *model = p;
    *model_len = (size_t)(slash - p);
    p = slash + 1;
    size_t sl = strlen(suffix);
    if ((size_t)(end - p) == sl && memcmp(p, suffix, sl) == 0) return true;
    if ((size_t)(end - p) > 9 && memcmp(p, "versions/", 9) == 0) {
        p += 9;
        slash = memchr(p, '/', (size_t)(end - p));
        if (!slash || slash == p) return false;
        p = slash + 1;
        return (size_t)(end - p) == sl && memcmp(p, suffix, sl) == 0;
    }
    return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *not_ready_reason(void) {
    static __thread char reason[4096];
    if (g.draining) return "the server is shutting down";
    pthread_mutex_lock(&g.sick_lock);
    snprintf(reason, sizeof reason, "tritonserver is not ready");
    if (g.nsick) {
        size_t n = (size_t)snprintf(reason, sizeof reason, "reloading ");
        for (int i = 0; i < g.nsick && n < sizeof reason; i++)
            n += (size_t)snprintf(reason + n, sizeof reason - n, "%s%s", i ? ", " : "", g.sick[i]);
    }
    pthread_mutex_unlock(&g.sick_lock);
    return reason;
}

/* The front's own answer to a request, appended to out; false to forward the request. */
static bool answer_locally(conn_t *c, const char *method, size_t mlen, const char *target, size_t tlen,
                           const char *head, size_t head_len, const char *body, size_t body_len) {
    const char *model;
    size_t model_len;
    size_t plen = memchr(target, '?', tlen) ? (size_t)((const char *)memchr(target, '?', tlen) - target) : tlen;
    if (plen == 16 && memcmp(target, "/v2/health/ready", 16) == 0) {
        if (g.ready && !g.draining) http_error(&c->c.out, 200, "OK", NULL, false);
        else
            http_error(&c->c.out, 503, "Service Unavailable", not_ready_reason(), false);
        return true;
    }
    if (path_is(target, tlen, "ready", &model, &model_len) && is_sick(model, model_len)) {
        http_error(&c->c.out, 503, "Service Unavailable", "the model is being reloaded", false);
        return true;
    }
    if (mlen == 4 && memcmp(method, "POST", 4) == 0 && path_is(target, tlen, "infer", &model, &model_len)) {
        char why[1024];
        size_t jlen_text;
        const char *jlen = header(head, head_len, "inference-header-content-length", &jlen_text);
        buf_t inflated = {0};
        const char *p = body;
        size_t n = body_len;
        bool ok = true;
        if (header_has_ci(head, head_len, "content-encoding", "gzip") ||
            header_has_ci(head, head_len, "content-encoding", "deflate")) {
#ifdef SWISH_FRONT_NO_ZLIB
            snprintf(why, sizeof why, "compressed inference requests are not accepted by this server (built without "
                                      "zlib): send it uncompressed");
            ok = false;
#else
            if (!inflate_any(body, body_len, g.max_body_bytes, &inflated)) {
                snprintf(why, sizeof why, "the request's JSON does not parse: the body could not be decompressed");
                ok = false;
            }
            p = buf_data(&inflated);
            n = buf_size(&inflated);
#endif
        }
        if (ok && jlen) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(jlen_text < 31 ? jlen_text : 31), jlen);
            char *stop;
            unsigned long long hl = strtoull(tmp, &stop, 10);
            if (stop == tmp || *stop) {
                snprintf(why, sizeof why, "the request's JSON does not parse: bad Inference-Header-Content-Length");
                ok = false;
            } else if (hl < n) {
                n = (size_t)hl;
            }
        }
        if (ok) ok = check_json_request(p, n, why, sizeof why);
        buf_free(&inflated);
        if (!ok) {
            http_error(&c->c.out, 400, "Bad Request", why, false);
            return true;
        }
    }
    return false;
}

static void http_finish(conn_t *c);

static void http_send_upstream(conn_t *c) {
    c->head_sent = false;
    buf_clear(&c->uin);
    if (c->u.fd >= 0) {
        c->reused = true;
        buf_add(&c->u.out, buf_data(&c->request), buf_size(&c->request));
        return;
    }
    c->reused = false;
    if (!upstream_connect(c)) {
        http_error(&c->c.out, 503, "Service Unavailable", "the server is restarting", false);
        http_finish(c);
        return;
    }
    buf_add(&c->u.out, buf_data(&c->request), buf_size(&c->request));
}

static void http_next_request(conn_t *c) {
    while (!c->busy && buf_size(&c->in) && !c->dead) {
        const char *p = buf_data(&c->in);
        size_t n = buf_size(&c->in);
        const char *eoh = find_crlf2(p, n < MAX_HEAD_BYTES + 4 ? n : MAX_HEAD_BYTES + 4);
        if (!eoh) {
            if (n > MAX_HEAD_BYTES) {
                http_error(&c->c.out, 431, "Request Header Fields Too Large", NULL, true);
                c->keep = false;
                c->dead = true;
            }
            return;
        }
        size_t head_len = (size_t)(eoh - p) + 4;
        const char *sp1 = memchr(p, ' ', head_len), *line_end = memmem(p, head_len, "\r\n", 2);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || sp1 > line_end || sp2 > line_end) {
            http_error(&c->c.out, 400, "Bad Request", "malformed HTTP start line", true);
            c->dead = true;
            return;
        }
        const char *version = sp2 + 1;
        size_t vlen = (size_t)(line_end - version);
        bool chunked = header_has_ci(p, head_len, "transfer-encoding", "chunked");
        size_t stop, body_off = head_len, body_len;
        buf_t dechunked = {0};
        if (chunked) {
            int rc = dechunk(p + head_len, n - head_len, g.max_body_bytes, &stop, &dechunked);
            if (rc == 0) {
                buf_free(&dechunked);
                return;
            }
            if (rc < 0) {
                buf_free(&dechunked);
                if (rc == -2) http_error(&c->c.out, 413, "Payload Too Large", "request body too large", true);
                else http_error(&c->c.out, 400, "Bad Request", "malformed chunked body", true);
                c->dead = true;
                return;
            }
            stop += head_len;
            body_len = buf_size(&dechunked);
        } else {
            size_t cl_len;
            const char *cl = header(p, head_len, "content-length", &cl_len);
            unsigned long long length = 0;
            if (cl && cl_len) {
                char tmp[32], *end;
                snprintf(tmp, sizeof tmp, "%.*s", (int)(cl_len < 31 ? cl_len : 31), cl);
                errno = 0;
                length = strtoull(tmp, &end, 10);
                if (end == tmp || *end || errno || tmp[0] == '-') {
                    http_error(&c->c.out, 400, "Bad Request", "malformed Content-Length", true);
                    c->dead = true;
                    return;
                }
            }
            if (length > g.max_body_bytes) {
                char msg[96];
                snprintf(msg, sizeof msg, "request body of %llu bytes is too large", length);
                http_error(&c->c.out, 413, "Payload Too Large", msg, true);
                c->dead = true;
                return;
            }
            stop = head_len + (size_t)length;
            if (n < stop) return;
            body_len = (size_t)length;
        }
        c->keep = vlen == 8 && memcmp(version, "HTTP/1.1", 8) == 0 && !header_has_ci(p, head_len, "connection", "close");
        const char *body = chunked ? buf_data(&dechunked) : p + body_off;
        c->head_request = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;
        bool local = answer_locally(c, p, (size_t)(sp1 - p), sp1 + 1, (size_t)(sp2 - sp1 - 1), p, head_len, body,
                                    body_len);
        if (!local) {
            buf_clear(&c->request);
            if (chunked) { /* forward with a length: tritonserver sees exactly the bytes that were checked */
                const char *line = p;
                while (line < p + head_len - 2) {
                    const char *eol = memmem(line, (size_t)(p + head_len - line), "\r\n", 2);
                    size_t ll = (size_t)(eol - line) + 2;
                    if (!(ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)) buf_add(&c->request, line, ll);
                    line = eol + 2;
                }
                buf_printf(&c->request, "Content-Length: %zu\r\n\r\n", body_len);
                buf_add(&c->request, body, body_len);
            } else {
                buf_add(&c->request, p, stop);
            }
        }
        buf_free(&dechunked);
        buf_eat(&c->in, stop);
        if (local) {
            if (!c->keep || g.draining) {
                c->dead = true;
                return;
            }
            continue;
        }
        c->busy = true;
        c->attempt = 0;
        count_http(1);
        http_send_upstream(c);
    }
}

static void http_finish(conn_t *c) {
    if (c->busy) {
        c->busy = false;
        count_http(-1);
    }
    if (!c->keep || g.draining) {
        c->dead = true;
        return;
    }
    http_next_request(c);
}

static void http_from_server(conn_t *c) {
    while (c->busy && buf_size(&c->uin)) {
        if (!c->head_sent) {
            const char *p = buf_data(&c->uin);
            size_t n = buf_size(&c->uin);
            const char *eoh = find_crlf2(p, n);
            if (!eoh) {
                if (n > MAX_HEAD_BYTES) {
                    http_error(&c->c.out, 502, "Bad Gateway", "the server sent a malformed response", true);
                    c->keep = false;
                    upstream_close(c);
                    http_finish(c);
                }
                return;
            }
            size_t head_len = (size_t)(eoh - p) + 4;
            const char *sp = memchr(p, ' ', head_len);
            int status = sp ? atoi(sp + 1) : 0;
            size_t cl_len;
            const char *cl = header(p, head_len, "content-length", &cl_len);
            c->server_close = header_has_ci(p, head_len, "connection", "close");
            if (c->head_request || status == 204 || status == 304) c->remaining = 0;
            else if (header_has_ci(p, head_len, "transfer-encoding", "chunked")) c->remaining = -1;
            else if (cl) c->remaining = atoll(cl);
            else c->remaining = -2;
            c->head_sent = true;
            buf_add(&c->c.out, p, head_len);
            buf_eat(&c->uin, head_len);
            (void)cl_len;
        }
        bool done = false;
        if (c->remaining >= 0) {
            size_t take = buf_size(&c->uin) < (size_t)c->remaining ? buf_size(&c->uin) : (size_t)c->remaining;
            buf_add(&c->c.out, buf_data(&c->uin), take);
            buf_eat(&c->uin, take);
            c->remaining -= (long long)take;
            done = c->remaining == 0;
            if (done) buf_clear(&c->uin); /* anything after the body is not part of this response */
        } else if (c->remaining == -1) { /* passed on as it comes (streamed responses), watched for its end */
            buf_add(&c->c.out, buf_data(&c->uin), buf_size(&c->uin));
            buf_add(&c->chunks, buf_data(&c->uin), buf_size(&c->uin));
            buf_clear(&c->uin);
            size_t end;
            int rc = dechunk(buf_data(&c->chunks), buf_size(&c->chunks), (size_t)1 << 62, &end, NULL);
            if (rc == 0) return;
            buf_clear(&c->chunks);
            if (rc < 0) {
                c->keep = false;
                upstream_close(c);
                http_finish(c);
                return;
            }
            done = true;
        } else {
            buf_add(&c->c.out, buf_data(&c->uin), buf_size(&c->uin));
            buf_clear(&c->uin);
            return;
        }
        if (done) {
            if (c->server_close) upstream_close(c);
            http_finish(c);
        }
    }
}

static void http_upstream_closed(conn_t *c) {
    bool any = buf_size(&c->uin) > 0;
    upstream_close(c);
    if (!c->busy) return;
    if (c->remaining == -2 && c->head_sent) {
        c->keep = false;
        http_finish(c); /* a body delimited by the end of the connection */
    } else if (!c->head_sent && !any && c->reused && c->attempt == 0) {
        /* tritonserver closed a kept-alive connection (idle, or restarted) before reading this request: nothing was
         * processed, so send it again on a fresh connection. */
        c->attempt = 1;
        http_send_upstream(c);
    } else if (!c->head_sent) {
        c->keep = false;
        http_error(&c->c.out, 502, "Bad Gateway", "the server failed this request", true);
        http_finish(c);
    } else {
        c->keep = false;
        http_finish(c); /* cut mid-response (a crash): the client sees it */
    }
}

/* --- gRPC (HTTP/2) ------------------------------------------------------------------------------------------------ */

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN 24
enum { H2_DATA = 0, H2_HEADERS = 1, H2_RST_STREAM = 3, H2_GOAWAY = 7, H2_WINDOW_UPDATE = 8 };
enum { END_STREAM = 1, END_HEADERS = 4, PADDED = 8 };

static void h2_frame(buf_t *out, int kind, int flags, uint32_t stream, const void *payload, size_t n) {
    uint8_t h[9] = {(uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, (uint8_t)kind, (uint8_t)flags,
                    (uint8_t)(stream >> 24 & 0x7f), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};
    buf_add(out, h, 9);
    buf_add(out, payload, n);
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void hpack_int(buf_t *b, size_t v, int prefix, uint8_t first) {
    size_t limit = ((size_t)1 << prefix) - 1;
    if (v < limit) {
        uint8_t c = (uint8_t)(first | v);
        buf_add(b, &c, 1);
        return;
    }
    uint8_t c = (uint8_t)(first | limit);
    buf_add(b, &c, 1);
    v -= limit;
    while (v >= 128) {
        c = (uint8_t)(v % 128 + 128);
        buf_add(b, &c, 1);
        v /= 128;
    }
    c = (uint8_t)v;
    buf_add(b, &c, 1);
}

/* A literal header field without indexing, new name, no Huffman coding: it changes no decoder state. */
static void hpack_literal(buf_t *b, const char *name, const char *value, size_t vlen) {
    buf_add(b, "\x00", 1);
    hpack_int(b, strlen(name), 7, 0);
    buf_str(b, name);
    hpack_int(b, vlen, 7, 0);
    buf_add(b, value, vlen);
}

static void grpc_refusal(buf_t *out, uint32_t stream, const char *message) {
    buf_t block = {0}, msg = {0};
    buf_add(&block, "\x88", 1); /* :status 200 */
    hpack_literal(&block, "content-type", "application/grpc", 16);
    hpack_literal(&block, "grpc-status", "3", 1); /* INVALID_ARGUMENT */
    for (const unsigned char *s = (const unsigned char *)message; *s; s++) {
        if (*s < 0x20 || *s > 0x7e || *s == '%') buf_printf(&msg, "%%%02X", *s);
        else buf_add(&msg, s, 1);
    }
    hpack_literal(&block, "grpc-message", buf_data(&msg), buf_size(&msg));
    h2_frame(out, H2_HEADERS, END_STREAM | END_HEADERS, stream, buf_data(&block), buf_size(&block));
    buf_free(&block);
    buf_free(&msg);
}

static stream_t *stream_find(conn_t *c, uint32_t id, bool create) {
    if (c->cap_streams) {
        for (size_t i = id & (c->cap_streams - 1), k = 0; k < c->cap_streams; k++, i = (i + 1) & (c->cap_streams - 1)) {
            stream_t *s = &c->streams[i];
            if (!s->used && !s->tombstone) break;
            if (s->used && s->id == id) return s;
        }
    }
    if (!create) return NULL;
    if ((c->nstreams + 1) * 2 > c->cap_streams) { /* grow (and drop tombstones) */
        size_t cap = c->cap_streams ? c->cap_streams * 2 : 16;
        while ((c->nstreams + 1) * 2 > cap) cap *= 2;
        stream_t *old = c->streams;
        size_t old_cap = c->cap_streams;
        c->streams = calloc(cap, sizeof *c->streams);
        if (!c->streams) exit(3);
        c->cap_streams = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (!old[i].used) continue;
            size_t j = old[i].id & (cap - 1);
            while (c->streams[j].used) j = (j + 1) & (cap - 1);
            c->streams[j] = old[i];
        }
        free(old);
    }
    size_t i = id & (c->cap_streams - 1);
    while (c->streams[i].used) i = (i + 1) & (c->cap_streams - 1);
    c->streams[i] = (stream_t){.id = id, .used = true};
    c->nstreams++;
    return &c->streams[i];
}

static void stream_drop(conn_t *c, stream_t *s) {
    buf_free(&s->pending);
    s->used = false;
    s->tombstone = true;
    c->nstreams--;
}

static void stream_not_in_flight(conn_t *c, stream_t *s) {
    if (s->in_flight) {
        s->in_flight = false;
        c->open_streams--;
        count_grpc(-1);
    }
}

/* A stream stays in the table while it is in flight or its refused request still has DATA to come. */
static void stream_settle(conn_t *c, stream_t *s) {
    if (!s->in_flight && (!s->refused || s->request_done)) stream_drop(c, s);
}

/* Adds DATA payload to the stream; false (with why) if a message it completes must be refused. */
static bool grpc_check_data(stream_t *s, const uint8_t *data, size_t n, char *why, size_t why_len) {
    buf_add(&s->pending, data, n);
    while (buf_size(&s->pending) >= 5) {
        const uint8_t *p = (const uint8_t *)buf_data(&s->pending);
        size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        if (len > g.max_body_bytes) { /* refused before it is buffered */
            snprintf(why, why_len, "a gRPC message of %zu bytes is above the limit of %zu", len, g.max_body_bytes);
            return false;
        }
        if (buf_size(&s->pending) < 5 + len) break;
        bool ok;
        if (p[0] == 1) {
#ifdef SWISH_FRONT_NO_ZLIB
            snprintf(why, why_len, "compressed gRPC messages are not accepted by this server (built without zlib)");
            ok = false;
#else
            buf_t plain = {0};
            if (!inflate_any((const char *)p + 5, len, g.max_body_bytes, &plain)) {
                snprintf(why, why_len, "a compressed gRPC message could not be decompressed (gzip or deflate)");
                ok = false;
            } else {
                ok = check_grpc_message((const uint8_t *)buf_data(&plain), buf_size(&plain), why, why_len);
            }
            buf_free(&plain);
#endif
        } else {
            ok = check_grpc_message(p + 5, len, why, why_len);
        }
        buf_eat(&s->pending, 5 + len);
        if (!ok) return false;
    }
    return true;
}

static void grpc_from_client(conn_t *c) {
    buf_t *in = &c->in;
    if (!c->preface_seen) {
        if (buf_size(in) < PREFACE_LEN) return;
        if (memcmp(buf_data(in), PREFACE, PREFACE_LEN) != 0) {
            c->dead = true;
            return;
        }
        c->preface_seen = true;
        buf_add(&c->u.out, PREFACE, PREFACE_LEN);
        buf_eat(in, PREFACE_LEN);
    }
    for (;;) {
        size_t n = buf_size(in);
        if (n < 9) break;
        const uint8_t *f = (const uint8_t *)buf_data(in);
        size_t length = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (n < 9 + length) break;
        int kind = f[3], flags = f[4];
        uint32_t id = ((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) & 0x7fffffff;
        bool forward = true;
        if (kind == H2_HEADERS && id) {
            if (!stream_find(c, id, false)) {
                stream_t *s = stream_find(c, id, true);
                s->in_flight = true;
                c->open_streams++;
                count_grpc(1);
            }
        } else if (kind == H2_RST_STREAM && id) {
            stream_t *s = stream_find(c, id, false);
            if (s) {
                stream_not_in_flight(c, s);
                stream_drop(c, s);
            }
        } else if (kind == H2_DATA && id) {
            stream_t *s = stream_find(c, id, false);
            if (s && s->refused) { /* the rest of a refused request: dropped, its credit given back */
                if (length) {
                    uint8_t inc[4];
                    be32(inc, (uint32_t)length);
                    h2_frame(&c->c.out, H2_WINDOW_UPDATE, 0, 0, inc, 4);
                }
                forward = false;
                if (flags & END_STREAM) {
                    s->request_done = true;
                    stream_settle(c, s);
                }
            } else if (s && !s->request_done) {
                const uint8_t *payload = f + 9;
                size_t plen = length;
                if (flags & PADDED && plen) {
                    size_t pad = payload[0];
                    payload++;
                    plen = pad + 1 <= length ? length - 1 - pad : 0;
                }
                char why[1024];
                if (!grpc_check_data(s, payload, plen, why, sizeof why)) {
                    s->refused = true;
                    buf_free(&s->pending);
                    uint8_t code[4];
                    be32(code, 8); /* CANCEL */
                    h2_frame(&c->u.out, H2_RST_STREAM, 0, id, code, 4);
                    grpc_refusal(&c->c.out, id, why);
                    if (length) { /* the flow-control credit tritonserver will never give back */
                        uint8_t inc[4];
                        be32(inc, (uint32_t)length);
                        h2_frame(&c->c.out, H2_WINDOW_UPDATE, 0, 0, inc, 4);
                    }
                    forward = false;
                    s->request_done = (flags & END_STREAM) != 0;
                    stream_not_in_flight(c, s);
                    stream_settle(c, s);
                } else if (flags & END_STREAM) {
                    s->request_done = true;
                    buf_free(&s->pending);
                }
            }
        }
        if (forward) buf_add(&c->u.out, f, 9 + length);
        buf_eat(in, 9 + length);
    }
}

static void grpc_from_server(conn_t *c) {
    /* Only whole frames go on, so the front can put its own frames between them. */
    size_t pos = 0, n = buf_size(&c->uin);
    const uint8_t *b = (const uint8_t *)buf_data(&c->uin);
    while (n - pos >= 9) {
        const uint8_t *f = b + pos;
        size_t length = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (n - pos < 9 + length) break;
        int kind = f[3], flags = f[4];
        uint32_t id = ((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) & 0x7fffffff;
        if (id && (kind == H2_RST_STREAM || ((flags & END_STREAM) && (kind == H2_DATA || kind == H2_HEADERS)))) {
            stream_t *s = stream_find(c, id, false);
            if (s) {
                stream_not_in_flight(c, s);
                stream_settle(c, s);
            }
        }
        pos += 9 + length;
    }
    if (pos) {
        buf_add(&c->c.out, b, pos);
        buf_eat(&c->uin, pos);
    }
}

/* --- connection life ---------------------------------------------------------------------------------------------- */

static void conn_close(conn_t *c) {
    if (c->busy) {
        c->busy = false;
        count_http(-1);
    }
    count_grpc(-(long)c->open_streams);
    c->open_streams = 0;
    if (c->c.fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->c.fd, NULL);
        close(c->c.fd);
        c->c.fd = -1;
    }
    upstream_close(c);
    if (c->prev) c->prev->next = c->next;
    else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = NULL;
    c->dead = true;
    c->next = graveyard;
    graveyard = c;
}

static void conn_free(conn_t *c) {
    buf_free(&c->c.out);
    buf_free(&c->u.out);
    buf_free(&c->in);
    buf_free(&c->uin);
    buf_free(&c->request);
    buf_free(&c->chunks);
    for (size_t i = 0; i < c->cap_streams; i++) buf_free(&c->streams[i].pending);
    free(c->streams);
    free(c);
}

static void accept_all(int which) {
    for (;;) {
        int fd = accept4(listen_fd[which], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        set_nodelay(fd);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->grpc = which == 1;
        c->c.fd = fd;
        c->c.tag = (tag_t){TAG_CLIENT, c};
        c->u.fd = -1;
        c->u.tag = (tag_t){TAG_UPSTREAM, c};
        c->keep = true;
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        if (c->grpc && !upstream_connect(c)) {
            close(fd);
            free(c);
            conns = conns->next;
            if (conns) conns->prev = NULL;
            continue;
        }
        update_interest(c);
    }
}

/* Reads what a socket has; false on end of stream or error. */
static bool read_into(int fd, buf_t *b) {
    for (int rounds = 0; rounds < 16; rounds++) {
        buf_reserve(b, READ_CHUNK);
        size_t room = b->cap - b->len;
        ssize_t n = read(fd, b->p + b->len, room);
        if (n > 0) {
            b->len += (size_t)n;
            if ((size_t)n < room) return true; /* nothing more for now */
            continue;
        }
        if (n == 0) return false;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno != EINTR) return false;
    }
    return true;
}

static void on_client(conn_t *c, uint32_t events) {
    if (events & EPOLLOUT && !flush(&c->c)) {
        conn_close(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        bool open = read_into(c->c.fd, &c->in);
        if (c->grpc) grpc_from_client(c);
        else if (!c->busy) http_next_request(c);
        if (!open) c->dead = true;
    }
}

static void on_upstream(conn_t *c, uint32_t events) {
    if (c->u.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->u.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            upstream_close(c);
            if (c->grpc) c->dead = true;
            else if (c->busy) {
                http_error(&c->c.out, 503, "Service Unavailable", "the server is restarting", false);
                http_finish(c);
            }
            return;
        }
        c->u.connecting = false;
    }
    if (events & EPOLLOUT && !flush(&c->u)) events |= EPOLLHUP;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        unsigned gen = c->ugen;
        bool open = read_into(c->u.fd, &c->uin);
        if (c->grpc) {
            grpc_from_server(c);
            if (!open) c->dead = true; /* tritonserver went away: so does this client connection */
        } else {
            if (c->busy) http_from_server(c);
            else buf_clear(&c->uin);
            /* Closed, unless the response finished and a new connection already serves the next request. */
            if (!open && c->ugen == gen && c->u.fd >= 0) http_upstream_closed(c);
        }
    }
}

/* After each event: send what is buffered, close finished connections (once their answers are out). */
static void settle(conn_t *c) {
    if (!c || c->c.fd < 0) return;
    if (c->u.fd >= 0 && !c->u.connecting && !flush(&c->u)) {
        if (c->grpc) c->dead = true;
        else http_upstream_closed(c);
    }
    bool client_ok = flush(&c->c);
    if (!client_ok || (c->dead && !buf_size(&c->c.out))) {
        conn_close(c);
        return;
    }
    if (c->dead) { /* answer still going out: stop reading, close once written */
        if (c->u.fd >= 0) upstream_close(c);
        watch(&c->c, EPOLLOUT);
        return;
    }
    update_interest(c);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Control (stdin) and main loop
 * ------------------------------------------------------------------------------------------------------------- */

static long in_flight(void) {
    long n = 0;
    for (int i = 0; i < nworkers; i++)
        n += __atomic_load_n(&workers[i].http_in_flight, __ATOMIC_RELAXED) +
             __atomic_load_n(&workers[i].grpc_open, __ATOMIC_RELAXED);
    return n;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In a worker, once the control thread says so: tell gRPC clients to open no new streams, close idle HTTP
 * connections; busy ones close after their response (g.draining). */
static void worker_drain(void) {
    for (int i = 0; i < 2; i++) epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd[i], NULL);
    for (conn_t *c = conns, *next; c; c = next) {
        next = c->next;
        if (c->grpc) {
            uint8_t payload[8];
            be32(payload, 0x7fffffff);
            be32(payload + 4, 0);
            h2_frame(&c->c.out, H2_GOAWAY, 0, 0, payload, 8);
            settle(c);
        } else if (!c->busy && !buf_size(&c->in)) {
            c->dead = true;
            settle(c);
        }
    }
}

static void *worker_main(void *arg) {
    self = arg;
    ep = self->ep;
    struct epoll_event events[256];
    bool drained = false;
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            tag_t *t = events[i].data.ptr;
            if (t->conn && t->conn->c.fd < 0) continue; /* closed earlier in this round */
            switch (t->kind) {
            case TAG_LISTEN_HTTP:
                if (!g.draining) accept_all(0);
                break;
            case TAG_LISTEN_GRPC:
                if (!g.draining) accept_all(1);
                break;
            case TAG_WAKE: {
                uint64_t v;
                if (read(self->wake, &v, sizeof v) < 0) v = 0;
                if (g.draining && !drained) {
                    drained = true;
                    worker_drain();
                }
                break;
            }
            case TAG_CLIENT:
                on_client(t->conn, events[i].events);
                settle(t->conn);
                break;
            case TAG_UPSTREAM:
                if (t->conn->u.fd < 0) break;
                on_upstream(t->conn, events[i].events);
                settle(t->conn);
                break;
            }
        }
        while (graveyard) {
            conn_t *c = graveyard;
            graveyard = c->next;
            conn_free(c);
        }
    }
    return NULL;
}

/* The control thread: stop accepting, wake the workers, wait for requests in flight, report, exit. */
static void drain(double seconds) {
    double deadline = now() + seconds;
    g.draining = true;
    for (int i = 0; i < 2; i++) shutdown(listen_fd[i], SHUT_RD); /* new connections are refused from now on */
    for (int i = 0; i < nworkers; i++) {
        uint64_t one = 1;
        if (write(workers[i].wake, &one, sizeof one) < 0) continue;
    }
    while (in_flight() && now() < deadline) usleep(20 * 1000);
    long left = in_flight();
    usleep(50 * 1000); /* the last answers leave their buffers */
    printf("drained %d\n", left == 0);
    fflush(stdout);
    _exit(0);
}

static void control_line(char *line) {
    if (!strncmp(line, "ready ", 6)) g.ready = line[6] == '1';
    else if (!strncmp(line, "sick ", 5)) {
        pthread_mutex_lock(&g.sick_lock);
        if (!is_sick_locked(line + 5, strlen(line + 5)) && g.nsick < MAX_MODELS) g.sick[g.nsick++] = strdup(line + 5);
        qsort(g.sick, (size_t)g.nsick, sizeof g.sick[0], by_name);
        pthread_mutex_unlock(&g.sick_lock);
    } else if (!strncmp(line, "well ", 5)) {
        pthread_mutex_lock(&g.sick_lock);
        for (int i = 0; i < g.nsick; i++)
            if (!strcmp(g.sick[i], line + 5)) {
                free(g.sick[i]);
                g.sick[i] = g.sick[--g.nsick];
                break;
            }
        qsort(g.sick, (size_t)g.nsick, sizeof g.sick[0], by_name);
        pthread_mutex_unlock(&g.sick_lock);
    } else if (!strcmp(line, "inflight")) {
        printf("inflight %ld\n", in_flight());
        fflush(stdout);
    } else if (!strncmp(line, "drain ", 6)) {
        drain(atof(line + 6));
    }
}

static int bind_port(const char *host, const char *port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        printf("error %s %s\n", port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        printf("error %s %s\n", port, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void usage(void) {
    fprintf(stderr, "usage: swish-front --host HOST --http-port P --grpc-port P --http-upstream H:P --grpc-upstream H:P "
                    "[--max-tensor-bytes N] [--max-body-bytes N] [--threads N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *http_port = NULL, *grpc_port = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--http-port")) http_port = v;
        else if (!strcmp(k, "--grpc-port")) grpc_port = v;
        else if (!strcmp(k, "--http-upstream")) snprintf(g.http_upstream, sizeof g.http_upstream, "%s", v);
        else if (!strcmp(k, "--grpc-upstream")) snprintf(g.grpc_upstream, sizeof g.grpc_upstream, "%s", v);
        else if (!strcmp(k, "--max-tensor-bytes")) g.max_tensor_bytes = (u128)strtoull(v, NULL, 10);
        else if (!strcmp(k, "--max-body-bytes")) g.max_body_bytes = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(k, "--threads")) nworkers = atoi(v);
        else usage();
    }
    if (!http_port || !grpc_port || !g.http_upstream[0] || !g.grpc_upstream[0]) usage();
    if (nworkers < 1) nworkers = 1;
    if (nworkers > MAX_WORKERS) nworkers = MAX_WORKERS;
    signal(SIGPIPE, SIG_IGN);
    const char *ports[2] = {http_port, grpc_port};
    for (int i = 0; i < 2; i++) {
        listen_fd[i] = bind_port(host, ports[i]);
        if (listen_fd[i] < 0) {
            fflush(stdout);
            return 2;
        }
    }
    for (int w = 0; w < nworkers; w++) {
        workers[w].ep = epoll_create1(EPOLL_CLOEXEC);
        workers[w].wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        for (int i = 0; i < 2; i++) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listen_tag[i]};
            epoll_ctl(workers[w].ep, EPOLL_CTL_ADD, listen_fd[i], &ev);
        }
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &wake_tag};
        epoll_ctl(workers[w].ep, EPOLL_CTL_ADD, workers[w].wake, &wev);
        if (pthread_create(&workers[w].thread, NULL, worker_main, &workers[w]) != 0) {
            printf("error %s cannot start a worker thread\n", http_port);
            fflush(stdout);
            return 2;
        }
    }
    printf("bound\n");
    fflush(stdout);
    /* Control lines until the launcher closes stdin (it is gone): then end at once. */
    buf_t control_in = {0};
    for (;;) {
        buf_reserve(&control_in, 4096);
        ssize_t n = read(0, control_in.p + control_in.len, control_in.cap - control_in.len);
        if (n == 0 || (n < 0 && errno != EINTR)) _exit(0);
        if (n < 0) continue;
        control_in.len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf_data(&control_in), '\n', buf_size(&control_in)))) {
            *nl = 0;
            char *line = buf_data(&control_in);
            size_t len = (size_t)(nl - line) + 1;
            control_line(line);
            buf_eat(&control_in, len);
        }
    }
}
