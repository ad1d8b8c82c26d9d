/*
 * pitrdiff._canon.encode_lines: lines of a DynamoDB export to S3 (DynamoDB
 * JSON, one {"Item": {...}} per line) straight into the export dataset's
 * column lists, without building Python objects for the item; and
 * encode_items, the same for the items of a Scan response's "Items" array,
 * which items_span finds in the response body.
 *
 * For each line it parses the JSON text, applies codec.py's canonical rules
 * (those of the C walk in _canon.c: numbers respelled, sets sorted and
 * de-duplicated, canonical base64 kept, the same nesting limit and item-size
 * rules), writes the canonical JSON exactly as orjson.dumps(...,
 * option=OPT_SORT_KEYS) writes it (names sorted by code point, which is the
 * byte order of UTF-8; orjson's escapes: \" \\ \b \t \n \f \r and \u00xx for
 * the other control characters, everything else as is), and appends to the
 * column lists what codec.encode_record gives for the item: the key's JSON,
 * the item's JSON, its xxh3-64, its size, the key values.
 *
 * Correctness by delegation, as in _canon.c: it handles the common subset and
 * stops at the first line it is not sure of (JSON outside that subset, an
 * escape in a number or a tag, a lone surrogate, invalid UTF-8, a duplicate
 * name, a tag or value the walk would refuse, a missing key attribute, a key
 * type other than the declared one, ...) and returns that line's index: the
 * caller runs the Python path (orjson.loads, codec.encode_record) on it, which
 * gives the same result or today's exact error. A line is appended to every
 * column list or to none. The GIL is held throughout.
 */
#include "_canon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* as _canon.c and codec.py */
#define MAX_KEYS 2   /* a DynamoDB key: partition key and optional sort key */

/* ------------------------------------------------------------------ buffers */

typedef struct {
    char *data;
    Py_ssize_t length, capacity;
} buffer;

static int
reserve(buffer *b, Py_ssize_t more)
{
    if (more > PY_SSIZE_T_MAX / 4 - b->length) {
        return -1;
    }
    if (b->length + more <= b->capacity) {
        return 0;
    }
    Py_ssize_t capacity = b->capacity ? b->capacity : 4096;
    while (capacity < b->length + more) {
        capacity *= 2;
    }
    char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static inline int
put(buffer *b, const char *s, Py_ssize_t n)
{
    if (n == 0) {
        return 0; /* b->data may still be NULL: no memcpy to it */
    }
    if (reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->length, s, n);
    b->length += n;
    return 0;
}

static inline int
put_char(buffer *b, char c)
{
    if (b->length == b->capacity && reserve(b, 1) < 0) {
        return -1;
    }
    b->data[b->length++] = c;
    return 0;
}

#define PUT_LITERAL(b, text) put((b), (text), (Py_ssize_t)(sizeof(text) - 1))

/* ------------------------------------------------------------------ state */

/* A string's decoded UTF-8 bytes: the line's own bytes (no escapes in it) or
 * bytes in the scratch buffer (decoded escapes, canonical numbers). */
typedef struct {
    Py_ssize_t offset, length;
    int in_scratch;
} text_ref;

/* A map entry or a set element while its container is parsed. */
typedef struct {
    text_ref text;         /* the name, or the element (canonical for NS) */
    const char *bytes;     /* text's bytes, resolved just before sorting */
    Py_ssize_t start, end; /* a map entry's "name":value span in `out` */
    Py_ssize_t size;       /* a set element's item-size bytes */
} entry;

typedef struct {
    const char *name; /* the key attribute's name, UTF-8 */
    Py_ssize_t name_length;
    enum tag declared; /* T_OTHER: not declared */
    int found;
    enum tag tag;
    Py_ssize_t entry_offset, entry_length; /* its "name":{...} in `keys` */
    Py_ssize_t value_offset, value_length; /* S text, N canonical, B base64, in `keys` */
} key_slot;

typedef struct {
    const char *line, *p, *end;
    buffer out, scratch, keys, spare;
    entry *entries;
    Py_ssize_t count, capacity;
    key_slot slots[MAX_KEYS];
    Py_ssize_t key_count;
} parser;

static inline const char *
text_bytes(const parser *ps, text_ref ref)
{
    return (ref.in_scratch ? ps->scratch.data : ps->line) + ref.offset;
}

static int
push_entry(parser *ps, const entry *e)
{
    if (ps->count == ps->capacity) {
        Py_ssize_t capacity = ps->capacity ? ps->capacity * 2 : 256;
        entry *entries = PyMem_Realloc(ps->entries, capacity * sizeof(entry));
        if (entries == NULL) {
            return -1;
        }
        ps->entries = entries;
        ps->capacity = capacity;
    }
    ps->entries[ps->count++] = *e;
    return 0;
}

/* ------------------------------------------------------------------ JSON text */

static inline void
skip_space(parser *ps)
{
    const char *p = ps->p;
    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    ps->p = p;
}

static inline int
expect(parser *ps, char c)
{
    skip_space(ps);
    if (ps->p >= ps->end || *ps->p != c) {
        return -1;
    }
    ps->p++;
    return 0;
}

/* 1 when the next non-space character is c (and consumes it), else 0. */
static inline int
accept(parser *ps, char c)
{
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at p (p[0] >= 0x80), 0 when invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static Py_ssize_t
utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return end - p >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
            return 0;
        }
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80) {
            return 0;
        }
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

static long
hex4(const unsigned char *p, const unsigned char *end)
{
    long value = 0;
    if (end - p < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0) {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

static Py_ssize_t
encode_utf8(long code, char *out)
{
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes in v may be '"', '\\', below 0x20 or above
 * 0x7F (the classic "has a zero byte" tests: a false alarm only costs the
 * byte-by-byte look that follows). */
static inline uint64_t
special8(uint64_t v)
{
    uint64_t quote = v ^ (ONES * '"'), backslash = v ^ (ONES * '\\');
    return (((quote - ONES) & ~quote) | ((backslash - ONES) & ~backslash) |
            ((v - ONES * 0x20) & ~v) | v) &
           HIGHS;
}

/* A JSON string (the next token) as its decoded UTF-8 bytes. */
static int
parse_string(parser *ps, text_ref *ref)
{
    skip_space(ps);
    const unsigned char *p = (const unsigned char *)ps->p, *end = (const unsigned char *)ps->end;
    if (p >= end || *p != '"') {
        return -1;
    }
    const unsigned char *start = ++p;
    for (;;) { /* the common case: no escapes, the bytes are the text */
        uint64_t block;
        while (end - p >= 8 && (memcpy(&block, p, 8), special8(block) == 0)) {
            p += 8; /* eight plain ASCII characters */
        }
        if (p >= end) {
            return -1;
        }
        unsigned char c = *p;
        if (c == '"') {
            ref->offset = (const char *)start - ps->line;
            ref->length = p - start;
            ref->in_scratch = 0;
            ps->p = (const char *)p + 1;
            return 0;
        }
        if (c == '\\') {
            break;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        Py_ssize_t k = utf8_sequence(p, end);
        if (k == 0) {
            return -1;
        }
        p += k;
    }
    Py_ssize_t offset = ps->scratch.length;
    if (put(&ps->scratch, (const char *)start, (const char *)p - (const char *)start) < 0) {
        return -1;
    }
    for (;;) {
        if (p >= end) {
            return -1;
        }
        unsigned char c = *p;
        if (c == '"') {
            p++;
            break;
        }
        if (c == '\\') {
            if (end - p < 2) {
                return -1;
            }
            char one;
            switch (p[1]) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u': {
                long code = hex4(p + 2, end);
                p += 6;
                if (code < 0 || (code >= 0xDC00 && code <= 0xDFFF)) {
                    return -1; /* a lone low surrogate: the Python path decides */
                }
                if (code >= 0xD800 && code <= 0xDBFF) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
                        return -1;
                    }
                    long low = hex4(p + 2, end);
                    if (low < 0xDC00 || low > 0xDFFF) {
                        return -1;
                    }
                    p += 6;
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                }
                char utf8[4];
                if (put(&ps->scratch, utf8, encode_utf8(code, utf8)) < 0) {
                    return -1;
                }
                continue;
            }
            default:
                return -1;
            }
            if (put_char(&ps->scratch, one) < 0) {
                return -1;
            }
            p += 2;
            continue;
        }
        if (c < 0x20) {
            return -1;
        }
        Py_ssize_t k = c < 0x80 ? 1 : utf8_sequence(p, end);
        if (k == 0 || put(&ps->scratch, (const char *)p, k) < 0) {
            return -1;
        }
        p += k;
    }
    ref->offset = offset;
    ref->length = ps->scratch.length - offset;
    ref->in_scratch = 1;
    ps->p = (const char *)p;
    return 0;
}

/* A string as orjson writes it: quoted, with orjson's escapes. Text read
 * without escapes holds none of the characters orjson escapes (JSON forbids
 * them raw), so its bytes are written as they are. */
static int
write_text(parser *ps, buffer *b, text_ref ref)
{
    const unsigned char *s = (const unsigned char *)text_bytes(ps, ref);
    Py_ssize_t n = ref.length;
    if (!ref.in_scratch) {
        if (reserve(b, n + 2) < 0) {
            return -1;
        }
        b->data[b->length] = '"';
        memcpy(b->data + b->length + 1, s, n);
        b->data[b->length + 1 + n] = '"';
        b->length += n + 2;
        return 0;
    }
    static const char hex[] = "0123456789abcdef";
    if (reserve(b, 6 * n + 2) < 0) {
        return -1;
    }
    s = (const unsigned char *)text_bytes(ps, ref); /* b is never the scratch buffer */
    char *o = b->data + b->length;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->length = o - b->data;
    return 0;
}

static int
parse_literal(parser *ps, const char *word, Py_ssize_t n)
{
    skip_space(ps);
    if (ps->end - ps->p < n || memcmp(ps->p, word, n) != 0) {
        return -1;
    }
    ps->p += n;
    return 0;
}

/* ------------------------------------------------------------------ ordering */

static int
bytes_order(const void *left, const void *right)
{
    const entry *a = left, *b = right;
    Py_ssize_t common = a->text.length < b->text.length ? a->text.length : b->text.length;
    int order = common ? memcmp(a->bytes, b->bytes, common) : 0;
    if (order != 0) {
        return order < 0 ? -1 : 1;
    }
    return a->text.length == b->text.length ? 0 : (a->text.length < b->text.length ? -1 : 1);
}

static int
number_order(const void *left, const void *right)
{
    const entry *a = left, *b = right;
    return number_compare_text(a->bytes, a->text.length, b->bytes, b->text.length);
}

static int
binary_order(const void *left, const void *right)
{
    const entry *a = left, *b = right;
    return b64_order_text(a->bytes, a->text.length, b->bytes, b->text.length);
}

/* Sort entries [base, count) by `order`. duplicates: -1 refuses equal
 * entries (map names), 0 drops all but the first of equal ones (sets).
 * *sorted: whether they already were in order (and unique). */
static int
sort_entries(parser *ps, Py_ssize_t base, int (*order)(const void *, const void *),
             int refuse_duplicates, int *sorted)
{
    entry *entries = ps->entries + base;
    Py_ssize_t n = ps->count - base;
    *sorted = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        entries[i].bytes = text_bytes(ps, entries[i].text);
        if (i > 0 && *sorted && order(&entries[i - 1], &entries[i]) >= 0) {
            *sorted = 0;
        }
    }
    if (*sorted) {
        return 0;
    }
    qsort(entries, n, sizeof(entry), order);
    Py_ssize_t kept = 1;
    for (Py_ssize_t i = 1; i < n; i++) {
        if (order(&entries[kept - 1], &entries[i]) == 0) {
            if (refuse_duplicates) {
                return -1;
            }
            continue;
        }
        entries[kept++] = entries[i];
    }
    ps->count = base + kept;
    return 0;
}

/* ------------------------------------------------------------------ values */

static int parse_typed(parser *ps, int depth, Py_ssize_t *size, enum tag *tag,
                       text_ref *scalar);

static int
capture_key(parser *ps, text_ref name, enum tag tag, text_ref scalar, Py_ssize_t start)
{
    const char *bytes = text_bytes(ps, name);
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        key_slot *slot = &ps->slots[i];
        if (slot->name_length != name.length || memcmp(slot->name, bytes, name.length) != 0) {
            continue;
        }
        if (slot->found || (tag != T_S && tag != T_N && tag != T_B) ||
            (slot->declared != T_OTHER && slot->declared != tag)) {
            return -1; /* the Python path names the problem */
        }
        slot->found = 1;
        slot->tag = tag;
        slot->entry_offset = ps->keys.length;
        slot->entry_length = ps->out.length - start;
        if (put(&ps->keys, ps->out.data + start, slot->entry_length) < 0) {
            return -1;
        }
        slot->value_offset = ps->keys.length;
        slot->value_length = scalar.length;
        return put(&ps->keys, text_bytes(ps, scalar), scalar.length);
    }
    return 0;
}

/* A map: {"name": typed, ...}, written with its entries sorted by name.
 * top: the item itself (names must not be empty; key attributes captured). */
static int
parse_map(parser *ps, int depth, int top, Py_ssize_t *size, Py_ssize_t *count)
{
    Py_ssize_t base = ps->count, total = 0;
    if (expect(ps, '{') < 0 || put_char(&ps->out, '{') < 0) {
        return -1;
    }
    Py_ssize_t region = ps->out.length;
    if (!accept(ps, '}')) {
        do {
            entry e = {0};
            enum tag tag = T_OTHER;
            text_ref scalar = {0};
            Py_ssize_t inner;
            if (parse_string(ps, &e.text) < 0 || (top && e.text.length == 0) ||
                expect(ps, ':') < 0) {
                return -1;
            }
            e.start = ps->out.length;
            if (write_text(ps, &ps->out, e.text) < 0 || put_char(&ps->out, ':') < 0 ||
                parse_typed(ps, depth + 1, &inner, &tag, &scalar) < 0) {
                return -1;
            }
            e.end = ps->out.length;
            if (top && capture_key(ps, e.text, tag, scalar, e.start) < 0) {
                return -1;
            }
            if (push_entry(ps, &e) < 0) {
                return -1;
            }
            total += e.text.length + inner;
        } while (accept(ps, ',') && put_char(&ps->out, ',') == 0);
        if (expect(ps, '}') < 0) {
            return -1;
        }
    }
    Py_ssize_t n = ps->count - base;
    int sorted;
    if (sort_entries(ps, base, bytes_order, 1, &sorted) < 0) {
        return -1;
    }
    if (!sorted) { /* write the entries again in name order */
        buffer *spare = &ps->spare;
        spare->length = 0;
        if (put(spare, ps->out.data + region, ps->out.length - region) < 0) {
            return -1;
        }
        ps->out.length = region;
        for (Py_ssize_t i = 0; i < n; i++) {
            const entry *e = &ps->entries[base + i];
            if ((i > 0 && put_char(&ps->out, ',') < 0) ||
                put(&ps->out, spare->data + (e->start - region), e->end - e->start) < 0) {
                return -1;
            }
        }
    }
    ps->count = base;
    *size = total;
    *count = n;
    return put_char(&ps->out, '}');
}

static int
parse_list(parser *ps, int depth, Py_ssize_t *size, Py_ssize_t *count)
{
    Py_ssize_t total = 0, n = 0;
    if (expect(ps, '[') < 0 || put_char(&ps->out, '[') < 0) {
        return -1;
    }
    if (!accept(ps, ']')) {
        do {
            Py_ssize_t inner;
            if (parse_typed(ps, depth + 1, &inner, NULL, NULL) < 0) {
                return -1;
            }
            total += inner;
            n++;
        } while (accept(ps, ',') && put_char(&ps->out, ',') == 0);
        if (expect(ps, ']') < 0) {
            return -1;
        }
    }
    *size = total;
    *count = n;
    return put_char(&ps->out, ']');
}

/* SS, NS, BS: non-empty; elements canonical, sorted and de-duplicated as the
 * C walk does (code point, numeric and byte order). */
static int
parse_set(parser *ps, enum tag tag, Py_ssize_t *size)
{
    Py_ssize_t base = ps->count, total = 0;
    if (expect(ps, '[') < 0 || accept(ps, ']')) {
        return -1; /* an empty set: the Python path refuses it */
    }
    do {
        entry e = {0};
        if (parse_string(ps, &e.text) < 0) {
            return -1;
        }
        if (tag == T_SS) {
            e.size = e.text.length;
        }
        else if (e.text.in_scratch) {
            return -1; /* an escape in a number or base64: the Python path */
        }
        else if (tag == T_NS) {
            char number[NUMBER_BUFFER];
            Py_ssize_t length = canon_number_text(text_bytes(ps, e.text), e.text.length, number,
                                                  &e.size);
            if (length < 0) {
                return -1;
            }
            e.text.offset = ps->scratch.length;
            e.text.length = length;
            e.text.in_scratch = 1;
            if (put(&ps->scratch, number, length) < 0) {
                return -1;
            }
        }
        else if ((e.size = b64_raw_size(text_bytes(ps, e.text), e.text.length)) < 0) {
            return -1;
        }
        if (push_entry(ps, &e) < 0) {
            return -1;
        }
    } while (accept(ps, ','));
    if (expect(ps, ']') < 0) {
        return -1;
    }
    int sorted;
    if (sort_entries(ps, base,
                     tag == T_SS ? bytes_order : (tag == T_NS ? number_order : binary_order), 0,
                     &sorted) < 0 ||
        put_char(&ps->out, '[') < 0) {
        return -1;
    }
    for (Py_ssize_t i = base; i < ps->count; i++) {
        if ((i > base && put_char(&ps->out, ',') < 0) ||
            write_text(ps, &ps->out, ps->entries[i].text) < 0) {
            return -1;
        }
        total += ps->entries[i].size;
    }
    ps->count = base;
    *size = total;
    return put_char(&ps->out, ']');
}

/* One typed value {"TAG": value}, written canonically; *size its item-size
 * bytes. tag and scalar (may be NULL): its tag, and for S, N and B its text
 * (N: the canonical spelling; B: the base64 text). */
static int
parse_typed(parser *ps, int depth, Py_ssize_t *size, enum tag *tag, text_ref *scalar)
{
    text_ref name, value;
    Py_ssize_t count;
    if (expect(ps, '{') < 0 || parse_string(ps, &name) < 0 || name.in_scratch ||
        expect(ps, ':') < 0) {
        return -1;
    }
    const char *t = text_bytes(ps, name);
    enum tag kind = tag_of_text(t, name.length);
    if (kind == T_OTHER || put(&ps->out, "{\"", 2) < 0 || put(&ps->out, t, name.length) < 0 ||
        put(&ps->out, "\":", 2) < 0) {
        return -1;
    }
    switch (kind) {
    case T_S:
        if (parse_string(ps, &value) < 0 || write_text(ps, &ps->out, value) < 0) {
            return -1;
        }
        *size = value.length;
        break;
    case T_N: {
        char number[NUMBER_BUFFER];
        Py_ssize_t length;
        if (parse_string(ps, &value) < 0 || value.in_scratch ||
            (length = canon_number_text(text_bytes(ps, value), value.length, number, size)) < 0) {
            return -1;
        }
        value.offset = ps->scratch.length;
        value.length = length;
        value.in_scratch = 1;
        if (put(&ps->scratch, number, length) < 0 || write_text(ps, &ps->out, value) < 0) {
            return -1;
        }
        break;
    }
    case T_B:
        if (parse_string(ps, &value) < 0 || value.in_scratch ||
            (*size = b64_raw_size(text_bytes(ps, value), value.length)) < 0 ||
            write_text(ps, &ps->out, value) < 0) {
            return -1;
        }
        break;
    case T_BOOL:
        if (parse_literal(ps, "true", 4) == 0) {
            if (PUT_LITERAL(&ps->out, "true") < 0) {
                return -1;
            }
        }
        else if (parse_literal(ps, "false", 5) < 0 || PUT_LITERAL(&ps->out, "false") < 0) {
            return -1;
        }
        *size = 1;
        break;
    case T_NULL:
        if (parse_literal(ps, "true", 4) < 0 || PUT_LITERAL(&ps->out, "true") < 0) {
            return -1;
        }
        *size = 1;
        break;
    case T_M:
    case T_L:
        if (depth >= MAX_DEPTH || (kind == T_M ? parse_map(ps, depth, 0, size, &count)
                                               : parse_list(ps, depth, size, &count)) < 0) {
            return -1;
        }
        *size += 3 + count;
        break;
    default: /* SS, NS, BS */
        if (parse_set(ps, kind, size) < 0) {
            return -1;
        }
        break;
    }
    if (tag != NULL) {
        *tag = kind;
    }
    if (scalar != NULL && (kind == T_S || kind == T_N || kind == T_B)) {
        *scalar = value;
    }
    return expect(ps, '}') < 0 ? -1 : put_char(&ps->out, '}');
}

/* Start a record at ps->p (the same line or page as before). */
static void
reset(parser *ps)
{
    ps->out.length = ps->scratch.length = ps->keys.length = 0;
    ps->count = 0;
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        ps->slots[i].found = 0;
    }
}

/* An item (the map of its attributes) at ps->p, every key attribute in it. */
static int
parse_item(parser *ps, Py_ssize_t *size)
{
    Py_ssize_t count;
    reset(ps);
    if (parse_map(ps, 0, 1, size, &count) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        if (!ps->slots[i].found) {
            return -1;
        }
    }
    return 0;
}

/* One line: {"Item": {...}} with nothing else. */
static int
parse_line(parser *ps, const char *line, Py_ssize_t n, Py_ssize_t *size)
{
    text_ref name;
    ps->line = ps->p = line;
    ps->end = line + n;
    if (expect(ps, '{') < 0 || parse_string(ps, &name) < 0 || name.in_scratch ||
        name.length != 4 || memcmp(text_bytes(ps, name), "Item", 4) != 0 ||
        expect(ps, ':') < 0 || parse_item(ps, size) < 0 || expect(ps, '}') < 0) {
        return -1;
    }
    skip_space(ps);
    return ps->p == ps->end ? 0 : -1;
}

/* ------------------------------------------------------------------ records */

/* The key's JSON: its attributes' entries in name order. */
static PyObject *
key_json(parser *ps)
{
    key_slot *order[MAX_KEYS];
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        order[i] = &ps->slots[i];
    }
    if (ps->key_count == 2) {
        entry a = {0}, b = {0};
        a.text.length = order[0]->name_length;
        a.bytes = order[0]->name;
        b.text.length = order[1]->name_length;
        b.bytes = order[1]->name;
        if (bytes_order(&a, &b) > 0) {
            key_slot *first = order[1];
            order[1] = order[0];
            order[0] = first;
        }
    }
    buffer *spare = &ps->spare;
    spare->length = 0;
    if (put_char(spare, '{') < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        if ((i > 0 && put_char(spare, ',') < 0) ||
            put(spare, ps->keys.data + order[i]->entry_offset, order[i]->entry_length) < 0) {
            return NULL;
        }
    }
    if (put_char(spare, '}') < 0) {
        return NULL;
    }
    return PyUnicode_DecodeUTF8(spare->data, spare->length, NULL);
}

static PyObject *
key_value(parser *ps, const key_slot *slot)
{
    const char *value = ps->keys.data + slot->value_offset;
    if (slot->tag == T_B) {
        return b64_decode_text(value, slot->value_length);
    }
    return PyUnicode_DecodeUTF8(value, slot->value_length, NULL);
}

/* Append the parsed line's record to the columns, to all or (on failure) none. */
static int
append_record(parser *ps, Py_ssize_t item_size, PyObject **columns, Py_ssize_t column_count,
              Py_ssize_t *characters)
{
    PyObject *values[4 + MAX_KEYS] = {NULL};
    Py_ssize_t lengths[4 + MAX_KEYS], appended = 0;
    int status = -1;
    /* bytes, not a memoryview of `out`: a memoryview is a GC-tracked object, and
     * one per item made the cyclic collector run over the column lists often. */
    PyObject *data = PyBytes_FromStringAndSize(ps->out.data, ps->out.length);
    if (data == NULL) {
        return -1;
    }
    values[0] = key_json(ps);
    values[1] = PyUnicode_DecodeUTF8(ps->out.data, ps->out.length, NULL);
    values[2] = PyObject_CallOneArg(canon_hash_bytes, data);
    values[3] = PyLong_FromSsize_t(item_size);
    Py_DECREF(data);
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        values[4 + i] = key_value(ps, &ps->slots[i]);
    }
    for (Py_ssize_t i = 0; i < column_count; i++) {
        if (values[i] == NULL) {
            goto finally;
        }
    }
    for (; appended < column_count; appended++) {
        lengths[appended] = PyList_GET_SIZE(columns[appended]);
        if (PyList_Append(columns[appended], values[appended]) < 0) {
            break;
        }
    }
    if (appended < column_count) { /* undo: every column keeps the same length */
        PyObject *type, *exc, *traceback;
        PyErr_Fetch(&type, &exc, &traceback);
        for (Py_ssize_t i = 0; i < appended; i++) {
            if (PyList_GET_SIZE(columns[i]) > lengths[i]) {
                PyList_SetSlice(columns[i], lengths[i], PyList_GET_SIZE(columns[i]), NULL);
            }
        }
        PyErr_Restore(type, exc, traceback);
        goto finally;
    }
    *characters += PyUnicode_GET_LENGTH(values[1]);
    status = 0;
finally:
    for (Py_ssize_t i = 0; i < 4 + MAX_KEYS; i++) {
        Py_XDECREF(values[i]);
    }
    return status;
}

static int
setup_keys(parser *ps, PyObject *names, PyObject *declared)
{
    if (!PyTuple_CheckExact(names) || PyTuple_GET_SIZE(names) < 1 ||
        PyTuple_GET_SIZE(names) > MAX_KEYS) {
        return -1;
    }
    if (declared != Py_None &&
        (!PyTuple_CheckExact(declared) || PyTuple_GET_SIZE(declared) != PyTuple_GET_SIZE(names))) {
        return -1;
    }
    ps->key_count = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < ps->key_count; i++) {
        key_slot *slot = &ps->slots[i];
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name) ||
            (slot->name = PyUnicode_AsUTF8AndSize(name, &slot->name_length)) == NULL) {
            PyErr_Clear();
            return -1;
        }
        slot->declared = T_OTHER;
        if (declared != Py_None) {
            PyObject *tag = PyTuple_GET_ITEM(declared, i);
            Py_ssize_t n;
            const char *t;
            if (tag != Py_None && (t = ascii_of(tag, &n)) != NULL) {
                slot->declared = tag_of_text(t, n);
            }
            if (tag != Py_None && slot->declared == T_OTHER) {
                return -1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ entry points */

static void
release(parser *ps)
{
    PyMem_Free(ps->out.data);
    PyMem_Free(ps->scratch.data);
    PyMem_Free(ps->keys.data);
    PyMem_Free(ps->spare.data);
    PyMem_Free(ps->entries);
}

/* The key and the column lists of a call: 1 when set up, 0 when this code
 * does not handle the key (everything to the Python path), -1 on a
 * TypeError (set). args: key_names, declared, keys, items, hashes, sizes, key_values. */
static int
set_up(parser *ps, PyObject *const *args, PyObject **columns)
{
    memset(ps, 0, sizeof *ps);
    if (canon_hash_bytes == NULL || setup_keys(ps, args[0], args[1]) < 0) {
        return 0; /* without configure(), or a key it does not handle */
    }
    PyObject *key_values = args[6];
    if (!PyTuple_CheckExact(key_values) || PyTuple_GET_SIZE(key_values) != ps->key_count) {
        PyErr_SetString(PyExc_TypeError, "key_values must be a tuple of one list per key attribute");
        return -1;
    }
    for (Py_ssize_t i = 0; i < 4 + ps->key_count; i++) {
        columns[i] = i < 4 ? args[2 + i] : PyTuple_GET_ITEM(key_values, i - 4);
        if (!PyList_CheckExact(columns[i])) {
            PyErr_SetString(PyExc_TypeError, "the columns must be lists");
            return -1;
        }
    }
    return 1;
}

/* After a record failed: 0 to leave it to the Python path, -1 to propagate
 * (an interrupt or a MemoryError), as _canon.c's give_up(). */
static int
leave_or_raise(void)
{
    if (PyErr_Occurred() != NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception) || PyErr_ExceptionMatches(PyExc_MemoryError)) {
            return -1;
        }
        PyErr_Clear();
    }
    return 0;
}

/* encode_lines(lines, start, key_names, declared, keys, items, hashes, sizes,
 * key_values, room) -> (next, count, characters, size_sum) */
PyObject *
encode_lines_entry(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *columns[4 + MAX_KEYS];
    parser ps;
    Py_ssize_t start, room, index, count = 0, characters = 0, size_sum = 0;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "encode_lines takes 10 arguments");
        return NULL;
    }
    PyObject *lines = args[0];
    room = PyLong_AsSsize_t(args[9]);
    if (room == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_CheckExact(lines) || (start = PyLong_AsSsize_t(args[1])) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "encode_lines: lines must be a list, start >= 0");
        }
        return NULL;
    }
    index = start;
    int ready = set_up(&ps, args + 2, columns);
    if (ready < 0) {
        goto fail;
    }
    for (; ready && index < PyList_GET_SIZE(lines) && characters < room; index++) {
        PyObject *line = PyList_GET_ITEM(lines, index);
        Py_ssize_t item_size;
        if (!PyBytes_CheckExact(line)) {
            break;
        }
        Py_INCREF(line); /* the list may change while Python code runs (allocations) */
        int status = parse_line(&ps, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), &item_size);
        if (status == 0) {
            status = append_record(&ps, item_size, columns, 4 + ps.key_count, &characters);
        }
        Py_DECREF(line);
        if (status < 0) {
            if (leave_or_raise() < 0) {
                goto fail;
            }
            break;
        }
        count++;
        size_sum += item_size;
    }
    release(&ps);
    return Py_BuildValue("(nnnn)", index, count, characters, size_sum);
fail:
    release(&ps);
    return NULL;
}

const char encode_lines_doc[] =
    "encode_lines(lines, start, key_names, declared, keys, items, hashes, sizes, key_values, "
    "room, /)\n--\n\n"
    "Encode export lines (bytes, each {\"Item\": {...}}) from lines[start] on, appending\n"
    "what codec.encode_record gives for each item to the column lists keys, items,\n"
    "hashes, sizes and key_values (a tuple of lists, one per key attribute), until\n"
    "`room` characters of items were added or a line needs the Python path.\n"
    "key_names: a tuple of str; declared: a tuple of their type tags (str or None)\n"
    "or None. Returns (next, count, characters, size_sum): the first line not\n"
    "encoded, how many were, their items' characters and sizes.";

/* Skip one JSON value (not validated: orjson parses what is kept of the body). */
static int
skip_value(parser *ps, int depth)
{
    skip_space(ps);
    if (ps->p >= ps->end || depth > 64) {
        return -1;
    }
    char c = *ps->p;
    if (c == '"') { /* to the next quote not escaped: an even run of backslashes before it */
        const char *p = ps->p + 1;
        for (;;) {
            const char *quote = memchr(p, '"', ps->end - p);
            if (quote == NULL) {
                return -1;
            }
            const char *run = quote;
            while (run > p && run[-1] == '\\') {
                run--;
            }
            p = quote + 1;
            if ((quote - run) % 2 == 0) {
                ps->p = p;
                return 0;
            }
        }
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        ps->p++;
        if (accept(ps, close)) {
            return 0;
        }
        do {
            if (c == '{' && (skip_value(ps, depth + 1) < 0 || expect(ps, ':') < 0)) {
                return -1;
            }
            if (skip_value(ps, depth + 1) < 0) {
                return -1;
            }
        } while (accept(ps, ','));
        return expect(ps, close);
    }
    const char *p = ps->p; /* a number or a literal */
    while (p < ps->end && strchr("0123456789+-.eEtruefalsn", *p) != NULL && *p != '\0') {
        p++;
    }
    if (p == ps->p) {
        return -1;
    }
    ps->p = p;
    return 0;
}

/* items_span(body) -> (start, end) of the "Items" array of a Scan response, or None. */
PyObject *
items_span_entry(PyObject *Py_UNUSED(module), PyObject *body)
{
    parser ps;
    memset(&ps, 0, sizeof ps);
    if (!PyBytes_CheckExact(body)) {
        Py_RETURN_NONE;
    }
    ps.line = ps.p = PyBytes_AS_STRING(body);
    ps.end = ps.line + PyBytes_GET_SIZE(body);
    Py_ssize_t start = -1, end = -1;
    if (expect(&ps, '{') < 0) {
        Py_RETURN_NONE;
    }
    if (!accept(&ps, '}')) {
        do {
            skip_space(&ps);
            const char *name = ps.p;
            if (ps.p >= ps.end || *ps.p != '"' || skip_value(&ps, 0) < 0) {
                Py_RETURN_NONE;
            }
            int items = ps.p - name == 7 && memcmp(name, "\"Items\"", 7) == 0;
            /* orjson keeps the last of two equal names, and reads escaped ones
             * ("It\u0065ms"): the span is sure only when "Items" is the one
             * top-level name spelled so and no name has an escape. */
            if ((items && start >= 0) || memchr(name, '\\', ps.p - name) != NULL ||
                expect(&ps, ':') < 0) {
                Py_RETURN_NONE;
            }
            skip_space(&ps);
            const char *value = ps.p;
            if (skip_value(&ps, 0) < 0) {
                Py_RETURN_NONE;
            }
            if (items && *value != '[') {
                Py_RETURN_NONE;
            }
            if (items) {
                start = value - ps.line;
                end = ps.p - ps.line;
            }
        } while (accept(&ps, ','));
        if (expect(&ps, '}') < 0) {
            Py_RETURN_NONE;
        }
    }
    skip_space(&ps);
    if (start < 0 || ps.p != ps.end) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(nn)", start, end);
}

const char items_span_doc[] =
    "items_span(body, /)\n--\n\n"
    "(start, end) of the \"Items\" array in a Scan response body (bytes), or None.\n"
    "The rest of the body is not validated: parse body[:start] + b\"[]\" + body[end:].";

/* encode_items(body, start, end, key_names, declared, keys, items, hashes, sizes,
 * key_values) -> (count, characters, size_sum, complete) */
PyObject *
encode_items_entry(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *columns[4 + MAX_KEYS];
    parser ps;
    Py_ssize_t start, end, count = 0, characters = 0, size_sum = 0;
    int complete = 0;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "encode_items takes 10 arguments");
        return NULL;
    }
    PyObject *body = args[0];
    start = PyLong_AsSsize_t(args[1]);
    end = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyBytes_CheckExact(body) || start < 0 || end < start || end > PyBytes_GET_SIZE(body)) {
        PyErr_SetString(PyExc_ValueError, "encode_items: body must be bytes holding start:end");
        return NULL;
    }
    int ready = set_up(&ps, args + 3, columns);
    if (ready < 0) {
        goto fail;
    }
    Py_INCREF(body);
    ps.line = PyBytes_AS_STRING(body);
    ps.p = ps.line + start;
    ps.end = ps.line + end;
    if (ready && expect(&ps, '[') == 0) {
        if (accept(&ps, ']')) {
            complete = 1;
        }
        while (!complete) {
            Py_ssize_t item_size;
            int status = parse_item(&ps, &item_size);
            if (status == 0) {
                status = append_record(&ps, item_size, columns, 4 + ps.key_count, &characters);
            }
            if (status < 0) {
                if (leave_or_raise() < 0) {
                    Py_DECREF(body);
                    goto fail;
                }
                break;
            }
            count++;
            size_sum += item_size;
            if (!accept(&ps, ',')) {
                skip_space(&ps);
                complete = expect(&ps, ']') == 0 && (skip_space(&ps), ps.p == ps.end);
                break;
            }
        }
    }
    Py_DECREF(body);
    release(&ps);
    return Py_BuildValue("(nnnO)", count, characters, size_sum, complete ? Py_True : Py_False);
fail:
    release(&ps);
    return NULL;
}

const char encode_items_doc[] =
    "encode_items(body, start, end, key_names, declared, keys, items, hashes, sizes, "
    "key_values, /)\n--\n\n"
    "encode_lines for the items of the JSON array body[start:end] (a Scan response's\n"
    "\"Items\"): returns (count, characters, size_sum, complete); complete is False\n"
    "when item `count` (or the array's syntax) needs the Python path.";
