/*
 * The scalar checks of pitrdiff._canon (declared in _canon.h): text sizes,
 * type tags, DynamoDB numbers and base64, each exactly as pitrdiff/codec.py
 * decides them; anything in doubt returns -1 so the Python walk decides.
 */
#include "_canon.h"

#include <string.h>

#define MAX_DIGITS 38          /* significant digits of a DynamoDB number */
#define MIN_ADJUSTED -130      /* smallest magnitude 1E-130 */
#define MAX_ADJUSTED 125       /* largest magnitude 9.99...E+125 */
#define MAX_EXPONENT_DIGITS 6  /* longer exponents are out of range (codec.py alike) */

/* Base64 alphabet value of each byte, -1 for bytes outside the alphabet. */
static signed char b64_value[256];
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
canon_scalars_init(void)
{
    memset(b64_value, -1, sizeof b64_value);
    for (int i = 0; i < 64; i++) {
        b64_value[(unsigned char)b64_alphabet[i]] = (signed char)i;
    }
}

/* ------------------------------------------------------------------ text */

/* The bytes of an exact, ASCII-only str (NULL otherwise, no exception set). */
const char *
ascii_of(PyObject *text, Py_ssize_t *length)
{
    if (!PyUnicode_CheckExact(text)) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    if (!PyUnicode_IS_ASCII(text)) {
        return NULL;
    }
    *length = PyUnicode_GET_LENGTH(text);
    return (const char *)PyUnicode_1BYTE_DATA(text);
}

/* UTF-8 byte count of an exact str; -1 for a lone surrogate (Python's
 * str.encode("utf-8") raises on those: the Python walk reproduces that). */
Py_ssize_t
utf8_size(PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return -1;
    }
#endif
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_IS_ASCII(text)) {
        return length;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            size += 1;
        }
        else if (c < 0x800) {
            size += 2;
        }
        else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF) {
                return -1;
            }
            size += 3;
        }
        else {
            size += 4;
        }
    }
    return size;
}

enum tag
tag_of(PyObject *key)
{
    Py_ssize_t n;
    const char *s = ascii_of(key, &n);
    return s == NULL ? T_OTHER : tag_of_text(s, n);
}

enum tag
tag_of_text(const char *s, Py_ssize_t n)
{
    if (n == 1) {
        switch (s[0]) {
        case 'S': return T_S;
        case 'N': return T_N;
        case 'B': return T_B;
        case 'M': return T_M;
        case 'L': return T_L;
        default: return T_OTHER;
        }
    }
    if (n == 2 && s[1] == 'S') {
        switch (s[0]) {
        case 'S': return T_SS;
        case 'N': return T_NS;
        case 'B': return T_BS;
        default: return T_OTHER;
        }
    }
    if (n == 4 && memcmp(s, "BOOL", 4) == 0) {
        return T_BOOL;
    }
    if (n == 4 && memcmp(s, "NULL", 4) == 0) {
        return T_NULL;
    }
    return T_OTHER;
}

/* ------------------------------------------------------------------ numbers */

/*
 * DynamoDB numbers, as codec.normalize_number checks and respells them: the
 * grammar [+-]?\d*(\.\d*)?([eE][+-]?\d+)? with at least one digit before the
 * exponent; at most 38 significant digits; magnitude 1E-130 to 9.99...E+125;
 * canonical spelling: plain notation, no leading zeros, no trailing fractional
 * zeros, no "+", "0" for zero. All on the digit characters: no float, no Decimal.
 */

/* A number as written: its parts, before any normalising. */
typedef struct {
    int negative;
    const char *whole, *fraction;
    Py_ssize_t whole_len, fraction_len;
    long exponent; /* the written exponent (0 if none) */
    int exponent_huge; /* more than MAX_EXPONENT_DIGITS digits: +1 or -1 */
} number_text;

/* Split `s` by the grammar; -1 when it does not match. */
static int
scan_number(const char *s, Py_ssize_t n, number_text *t)
{
    const char *p = s, *end = s + n;
    memset(t, 0, sizeof *t);
    if (p < end && (*p == '+' || *p == '-')) {
        t->negative = (*p++ == '-');
    }
    t->whole = p;
    while (p < end && *p >= '0' && *p <= '9') {
        p++;
    }
    t->whole_len = p - t->whole;
    t->fraction = p;
    if (p < end && *p == '.') {
        t->fraction = ++p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        t->fraction_len = p - t->fraction;
    }
    if (t->whole_len == 0 && t->fraction_len == 0) {
        return -1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int exponent_negative = 0;
        if (++p < end && (*p == '+' || *p == '-')) {
            exponent_negative = (*p++ == '-');
        }
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == digits) {
            return -1;
        }
        while (digits < p - 1 && *digits == '0') {
            digits++;
        }
        if (p - digits > MAX_EXPONENT_DIGITS) {
            t->exponent_huge = exponent_negative ? -1 : 1;
        }
        else {
            for (; digits < p; digits++) {
                t->exponent = t->exponent * 10 + (*digits - '0');
            }
            t->exponent = exponent_negative ? -t->exponent : t->exponent;
        }
    }
    return p == end ? 0 : -1;
}

/* A number's value: significant digits times ten to `exponent`. */
typedef struct {
    int negative;
    char digits[MAX_DIGITS];
    Py_ssize_t count; /* 0 for zero */
    long exponent;
} number_value;

/* The value of a scanned number; -1 when out of DynamoDB's limits. */
static int
number_value_of(const number_text *t, number_value *v)
{
    /* The digits whole+fraction as one sequence; its first and last non-zero. */
    Py_ssize_t total = t->whole_len + t->fraction_len, first = -1, last = -1;
    for (Py_ssize_t i = 0; i < total; i++) {
        char c = i < t->whole_len ? t->whole[i] : t->fraction[i - t->whole_len];
        if (c != '0') {
            first = first < 0 ? i : first;
            last = i;
        }
    }
    v->negative = t->negative;
    v->count = 0;
    if (first < 0) { /* zero, whatever its exponent */
        return 0;
    }
    v->count = last - first + 1;
    if (v->count > MAX_DIGITS || t->exponent_huge) {
        return -1; /* (a huge exponent of a non-zero number is far out of range) */
    }
    for (Py_ssize_t i = 0; i < v->count; i++) {
        Py_ssize_t at = first + i;
        v->digits[i] = at < t->whole_len ? t->whole[at] : t->fraction[at - t->whole_len];
    }
    v->exponent = (long)(total - 1 - last) - (long)t->fraction_len + t->exponent;
    long adjusted = v->exponent + (long)v->count - 1;
    return adjusted < MIN_ADJUSTED || adjusted > MAX_ADJUSTED ? -1 : 0;
}

/* The canonical spelling of a value into `buffer` (NUMBER_BUFFER bytes); its length. */
static Py_ssize_t
format_number(const number_value *v, char *buffer)
{
    Py_ssize_t k = 0, count = v->count;
    if (count == 0) {
        buffer[0] = '0';
        return 1;
    }
    if (v->negative) {
        buffer[k++] = '-';
    }
    if (v->exponent >= 0) { /* digits followed by zeros */
        memcpy(buffer + k, v->digits, count);
        memset(buffer + k + count, '0', v->exponent);
        return k + count + v->exponent;
    }
    if (-v->exponent >= count) { /* 0.000ddd */
        Py_ssize_t zeros = -v->exponent - count;
        memcpy(buffer + k, "0.", 2);
        memset(buffer + k + 2, '0', zeros);
        memcpy(buffer + k + 2 + zeros, v->digits, count);
        return k + 2 + zeros + count;
    }
    Py_ssize_t point = count + v->exponent; /* ddd.ddd */
    memcpy(buffer + k, v->digits, point);
    buffer[k + point] = '.';
    memcpy(buffer + k + point + 1, v->digits + point, count - point);
    return k + count + 1;
}

Py_ssize_t
canon_number_text(const char *s, Py_ssize_t n, char *buffer, Py_ssize_t *size)
{
    number_text scanned;
    number_value value;
    if (scan_number(s, n, &scanned) < 0 || number_value_of(&scanned, &value) < 0) {
        return -1;
    }
    /* AWS: about one byte per two significant digits, plus one (zero: one digit). */
    *size = ((value.count > 0 ? value.count : 1) + 1) / 2 + 1;
    return format_number(&value, buffer);
}

int
canon_number(PyObject *text, PyObject **out, Py_ssize_t *size)
{
    Py_ssize_t n, length;
    char buffer[NUMBER_BUFFER];
    const char *s = ascii_of(text, &n);
    if (s == NULL || (length = canon_number_text(s, n, buffer, size)) < 0) {
        return -1;
    }
    if (length == n && memcmp(buffer, s, n) == 0) {
        Py_INCREF(text);
        *out = text;
        return 0;
    }
    *out = PyUnicode_FromStringAndSize(buffer, length);
    return *out == NULL ? -1 : 0;
}

/* Numeric order of two canonical spellings (both valid, from canon_number). */
int
number_compare(PyObject *a, PyObject *b)
{
    return number_compare_text((const char *)PyUnicode_1BYTE_DATA(a), PyUnicode_GET_LENGTH(a),
                               (const char *)PyUnicode_1BYTE_DATA(b), PyUnicode_GET_LENGTH(b));
}

int
number_compare_text(const char *sa, Py_ssize_t na, const char *sb, Py_ssize_t nb)
{
    int sign_a = sa[0] == '-' ? -1 : (na == 1 && sa[0] == '0' ? 0 : 1);
    int sign_b = sb[0] == '-' ? -1 : (nb == 1 && sb[0] == '0' ? 0 : 1);
    if (sign_a != sign_b) {
        return sign_a < sign_b ? -1 : 1;
    }
    if (sign_a == 0) {
        return 0;
    }
    if (sign_a < 0) {
        sa++, na--, sb++, nb--;
    }
    /* Magnitudes: no leading zeros, so a longer whole part is larger ("0" for
     * magnitudes below one); then the fractions digit by digit, and as there
     * are no trailing zeros, the longer of two equal prefixes is larger. */
    const char *pa = memchr(sa, '.', na), *pb = memchr(sb, '.', nb);
    Py_ssize_t wa = pa ? pa - sa : na, wb = pb ? pb - sb : nb;
    int order;
    if (wa != wb) {
        order = wa < wb ? -1 : 1;
    }
    else {
        order = memcmp(sa, sb, wa);
        if (order == 0) {
            Py_ssize_t fa = pa ? na - wa - 1 : 0, fb = pb ? nb - wb - 1 : 0;
            Py_ssize_t common = fa < fb ? fa : fb;
            order = common ? memcmp(sa + wa + 1, sb + wb + 1, common) : 0;
            if (order == 0) {
                order = fa == fb ? 0 : (fa < fb ? -1 : 1);
            }
        }
        order = order < 0 ? -1 : (order > 0 ? 1 : 0);
    }
    return sign_a < 0 ? -order : order;
}

/* ------------------------------------------------------------------ binary */

/* Raw byte count of canonical (standard, padded) base64 text; -1 when the
 * text is anything else: what codec._canon_binary's round trip accepts. */
Py_ssize_t
b64_raw_size(const char *s, Py_ssize_t n)
{
    if (n % 4 != 0) {
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    Py_ssize_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    int any = 0; /* -1 (all bits set) once a byte outside the alphabet was seen */
    for (Py_ssize_t i = 0; i < n - pad; i++) {
        any |= b64_value[(unsigned char)s[i]];
    }
    if (any < 0) {
        return -1;
    }
    /* Canonical: the bits after the last byte are zero. */
    if (pad == 2 && (b64_value[(unsigned char)s[n - 3]] & 0x0F) != 0) {
        return -1;
    }
    if (pad == 1 && (b64_value[(unsigned char)s[n - 2]] & 0x03) != 0) {
        return -1;
    }
    return n / 4 * 3 - pad;
}

/* Byte order of the raw data of two canonical base64 texts, without decoding:
 * compare 6-bit values; a tie over the shorter text means its data is a prefix
 * of the other's (its padding bits are zero), so the shorter is smaller. */
int
b64_order(PyObject *a, PyObject *b)
{
    return b64_order_text((const char *)PyUnicode_1BYTE_DATA(a), PyUnicode_GET_LENGTH(a),
                          (const char *)PyUnicode_1BYTE_DATA(b), PyUnicode_GET_LENGTH(b));
}

int
b64_order_text(const char *a, Py_ssize_t na, const char *b, Py_ssize_t nb)
{
    const unsigned char *sa = (const unsigned char *)a, *sb = (const unsigned char *)b;
    while (na > 0 && sa[na - 1] == '=') {
        na--;
    }
    while (nb > 0 && sb[nb - 1] == '=') {
        nb--;
    }
    Py_ssize_t common = na < nb ? na : nb;
    for (Py_ssize_t i = 0; i < common; i++) {
        int va = b64_value[sa[i]], vb = b64_value[sb[i]];
        if (va != vb) {
            return va < vb ? -1 : 1;
        }
    }
    return na == nb ? 0 : (na < nb ? -1 : 1);
}

/* Standard padded base64 of bytes, as a new str. */
static PyObject *
b64_encode(PyObject *data)
{
    const unsigned char *in = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (n > (PY_SSIZE_T_MAX - 3) / 4 * 3) {
        return NULL;
    }
    PyObject *text = PyUnicode_New((n + 2) / 3 * 4, 127);
    if (text == NULL) {
        return NULL;
    }
    char *out = (char *)PyUnicode_1BYTE_DATA(text);
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long v = ((unsigned long)in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
        *out++ = b64_alphabet[(v >> 18) & 63];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        *out++ = b64_alphabet[(v >> 18) & 63];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    }
    else if (n - i == 2) {
        unsigned long v = ((unsigned long)in[i] << 16) | (in[i + 1] << 8);
        *out++ = b64_alphabet[(v >> 18) & 63];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = '=';
    }
    return text;
}

/* A binary value: canonical base64 text is kept, exact bytes are encoded;
 * anything else falls back. *out is a new reference. */
int
canon_binary(PyObject *value, PyObject **out, Py_ssize_t *size)
{
    Py_ssize_t n;
    const char *s = ascii_of(value, &n);
    if (s != NULL) {
        *size = b64_raw_size(s, n);
        if (*size < 0) {
            return -1;
        }
        Py_INCREF(value);
        *out = value;
        return 0;
    }
    if (!PyBytes_CheckExact(value)) {
        return -1;
    }
    *size = PyBytes_GET_SIZE(value);
    *out = b64_encode(value);
    return *out == NULL ? -1 : 0;
}

/* bytes of canonical base64 text (checked by canon_binary already). */
PyObject *
b64_decode(PyObject *text)
{
    return b64_decode_text((const char *)PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text));
}

PyObject *
b64_decode_text(const char *text, Py_ssize_t n)
{
    const unsigned char *in = (const unsigned char *)text;
    Py_ssize_t size = b64_raw_size((const char *)in, n);
    if (size < 0) {
        return NULL;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i += 4) {
        unsigned long v = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = in[i + j];
            v = (v << 6) | (c == '=' ? 0 : (unsigned long)b64_value[c]);
        }
        for (int j = 2; j >= 0 && k < size; j--) {
            out[k++] = (unsigned char)(v >> (8 * j));
        }
    }
    return data;
}
