/*
 * Shared declarations of pitrdiff._canon (see _canon.c for the contract):
 * the scalar checks of _canon_scalars.c (text, numbers, base64) used by the
 * walk in _canon.c. Every function returning int gives 0 for success and -1
 * for "fall back to the Python walk" (an exception may be set).
 */
#ifndef PITRDIFF_CANON_H
#define PITRDIFF_CANON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The type tags of DynamoDB's wire form. */
enum tag { T_S, T_N, T_B, T_BOOL, T_NULL, T_M, T_L, T_SS, T_NS, T_BS, T_OTHER };

/* Fill the base64 tables; called once by the module's init. */
void canon_scalars_init(void);

/* The bytes of an exact, ASCII-only str (NULL otherwise, no exception set). */
const char *ascii_of(PyObject *text, Py_ssize_t *length);

/* UTF-8 byte count of an exact str; -1 for a lone surrogate. */
Py_ssize_t utf8_size(PyObject *text);

/* The tag of a typed value's key (T_OTHER for anything but the ten tags). */
enum tag tag_of(PyObject *key);
enum tag tag_of_text(const char *s, Py_ssize_t n);

/* A DynamoDB number's canonical spelling (*out: a new reference, `text`
 * itself when already canonical) and item-size bytes. */
int canon_number(PyObject *text, PyObject **out, Py_ssize_t *size);

/* Room for a canonical number in range (at most 170 characters). */
#define NUMBER_BUFFER 256

/* The canonical spelling of DynamoDB number text s[0..n) into `buffer`
 * (NUMBER_BUFFER bytes): its length, or -1 (invalid or out of range); *size
 * its item-size bytes. */
Py_ssize_t canon_number_text(const char *s, Py_ssize_t n, char *buffer, Py_ssize_t *size);

/* Numeric order (-1, 0, 1) of two canonical spellings. */
int number_compare(PyObject *a, PyObject *b);
int number_compare_text(const char *a, Py_ssize_t na, const char *b, Py_ssize_t nb);

/* Raw byte count of canonical padded base64 text; -1 for anything else. */
Py_ssize_t b64_raw_size(const char *s, Py_ssize_t n);

/* Byte order (-1, 0, 1) of the data of two canonical base64 texts. */
int b64_order(PyObject *a, PyObject *b);
int b64_order_text(const char *a, Py_ssize_t na, const char *b, Py_ssize_t nb);

/* A binary value as canonical base64 text (*out: a new reference). */
int canon_binary(PyObject *value, PyObject **out, Py_ssize_t *size);

/* The bytes of canonical base64 text: a new bytes object, NULL on failure. */
PyObject *b64_decode(PyObject *text);
PyObject *b64_decode_text(const char *text, Py_ssize_t n);

/* codec.Record's callables, set by configure() (_canon.c): xxh3-64 of a
 * buffer as an int. */
extern PyObject *canon_hash_bytes;

/* encode_lines (_canon_json.c): native export lines straight to columns. */
PyObject *encode_lines_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char encode_lines_doc[];
PyObject *items_span_entry(PyObject *module, PyObject *body);
extern const char items_span_doc[];
PyObject *encode_items_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char encode_items_doc[];

#endif
