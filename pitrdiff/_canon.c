/*
 * pitrdiff._canon: the hot path of pitrdiff.codec.canonicalize, in C.
 *
 * canonicalize(item) walks one item in DynamoDB's low-level JSON ("wire form")
 * and returns exactly what codec._canonicalize_python returns for it:
 * (canonical item, item size in bytes), sharing unchanged parts with the input
 * (the input itself when it is already canonical). The rules are those of
 * docs/FORMAT.md and of codec.py; see codec.py for the Python reference.
 *
 * Correctness by delegation: this code handles well-formed input only. On any
 * doubt (an unknown tag, a type other than the exact built-in one, an invalid
 * or out-of-range number, non-canonical base64, bytearray or memoryview values,
 * nesting at the depth limit, a lone surrogate, an empty attribute name, any
 * C-API failure) it returns None and codec.py runs the Python walk on the item,
 * which then produces today's canonical form or today's exact error.
 *
 * encode_record(item, key_names) does all of codec.encode_record on that walk
 * (key columns, orjson.dumps and xxh3 called through configure()'s callables,
 * the codec.Record built here), or returns None likewise.
 *
 * This file: sets, the walk, records, the module; _canon_scalars.c: text,
 * numbers and base64 (declared in _canon.h). Internal functions return 0 on
 * success and -1 for "fall back"; an exception may then be set, and the entry
 * points clear it. The GIL is held throughout.
 */
#include "_canon.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* DynamoDB's nesting limit (codec: depth >= 32 raises) */

/* Interned tag strings, for the typed values this module creates. */
static PyObject *tag_N, *tag_B, *tag_M, *tag_L, *tag_SS, *tag_NS, *tag_BS;

/* ------------------------------------------------------------------ sets */

/* SS: sorted by code point, de-duplicated; the size counts unique elements. */
static int
canon_string_set(PyObject *typed, PyObject *value, PyObject **out, Py_ssize_t *size)
{
    Py_ssize_t n = PyList_GET_SIZE(value);
    int ordered = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *element = PyList_GET_ITEM(value, i);
        if (!PyUnicode_CheckExact(element)) {
            return -1;
        }
        if (i > 0 && ordered && PyUnicode_Compare(PyList_GET_ITEM(value, i - 1), element) >= 0) {
            ordered = 0;
        }
    }
    PyObject *unique = value;
    Py_INCREF(unique);
    if (!ordered) { /* a sorted copy, then duplicates (now adjacent) dropped */
        Py_DECREF(unique);
        /* PySequence_List allocates before it reads value: a finalizer the
         * allocation runs may change value, so the copy is checked again. */
        unique = PySequence_List(value);
        if (unique == NULL || PyList_GET_SIZE(unique) != n) {
            Py_XDECREF(unique);
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!PyUnicode_CheckExact(PyList_GET_ITEM(unique, i))) {
                Py_DECREF(unique);
                return -1;
            }
        }
        if (PyList_Sort(unique) < 0) {
            Py_DECREF(unique);
            return -1;
        }
        Py_ssize_t kept = 1;
        for (Py_ssize_t i = 1; i < n; i++) {
            PyObject *element = PyList_GET_ITEM(unique, i);
            if (PyUnicode_Compare(PyList_GET_ITEM(unique, kept - 1), element) == 0) {
                continue;
            }
            /* swap slots i and kept: each still owns one reference */
            PyList_SET_ITEM(unique, i, PyList_GET_ITEM(unique, kept));
            PyList_SET_ITEM(unique, kept++, element);
        }
        if (kept < n && PyList_SetSlice(unique, kept, n, NULL) < 0) {
            Py_DECREF(unique);
            return -1;
        }
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(unique); i++) {
        Py_ssize_t bytes = utf8_size(PyList_GET_ITEM(unique, i));
        if (bytes < 0) {
            Py_DECREF(unique);
            return -1;
        }
        total += bytes;
    }
    *size = total;
    if (ordered) {
        Py_DECREF(unique);
        Py_INCREF(typed);
        *out = typed;
        return 0;
    }
    *out = Py_BuildValue("{ON}", tag_SS, unique);
    return *out == NULL ? -1 : 0;
}

/* NS and BS: each element canonical (canon_number or canon_binary), sorted
 * by value (number_compare, or b64_order: by bytes) and de-duplicated. */
typedef struct {
    PyObject *text; /* canonical spelling (a new reference) */
    Py_ssize_t size;
} set_entry;

static int
number_entry_compare(const void *left, const void *right)
{
    return number_compare(((const set_entry *)left)->text, ((const set_entry *)right)->text);
}

static int
binary_entry_compare(const void *left, const void *right)
{
    return b64_order(((const set_entry *)left)->text, ((const set_entry *)right)->text);
}

static int
canon_sorted_set(PyObject *typed, PyObject *value, int numbers, PyObject **out, Py_ssize_t *size)
{
    int (*canon)(PyObject *, PyObject **, Py_ssize_t *) = numbers ? canon_number : canon_binary;
    int (*order)(PyObject *, PyObject *) = numbers ? number_compare : b64_order;
    int (*compare)(const void *, const void *) =
        numbers ? number_entry_compare : binary_entry_compare;
    Py_ssize_t n = PyList_GET_SIZE(value), done = 0, total = 0;
    set_entry *entries = PyMem_Malloc(n * sizeof(set_entry));
    if (entries == NULL) {
        return -1;
    }
    int unchanged = 1, result = -1;
    for (; done < n; done++) {
        PyObject *element = PyList_GET_ITEM(value, done);
        if (canon(element, &entries[done].text, &entries[done].size) < 0) {
            goto finally;
        }
        if (entries[done].text != element ||
            (done > 0 && order(entries[done - 1].text, entries[done].text) >= 0)) {
            unchanged = 0; /* respelled, out of order or a duplicate */
        }
    }
    if (unchanged) {
        for (Py_ssize_t i = 0; i < n; i++) {
            total += entries[i].size;
        }
        Py_INCREF(typed);
        *out = typed;
    }
    else {
        /* Equal values have equal canonical spellings: adjacent after sorting. */
        qsort(entries, n, sizeof(set_entry), compare);
        PyObject *ordered = PyList_New(0);
        if (ordered == NULL) {
            goto finally;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i > 0 && order(entries[i - 1].text, entries[i].text) == 0) {
                continue;
            }
            if (PyList_Append(ordered, entries[i].text) < 0) {
                Py_DECREF(ordered);
                goto finally;
            }
            total += entries[i].size;
        }
        *out = Py_BuildValue("{ON}", numbers ? tag_NS : tag_BS, ordered);
        if (*out == NULL) {
            goto finally;
        }
    }
    *size = total;
    result = 0;
finally:
    for (Py_ssize_t i = 0; i < done; i++) {
        Py_DECREF(entries[i].text);
    }
    PyMem_Free(entries);
    return result;
}

/* ------------------------------------------------------------------ the walk */

static int canon_value(PyObject *typed, int depth, PyObject **out, Py_ssize_t *size);

/* A map's entries: *copy is NULL when every value is already canonical, else a
 * new dict with the canonical values. *size counts names and values (not the
 * map's own 3 + n bytes). `top`: attribute names, which must not be empty. */
static int
canon_map(PyObject *map, int depth, int top, PyObject **copy, Py_ssize_t *size)
{
    Py_ssize_t pos = 0, total = 0;
    PyObject *name, *inner;
    *copy = NULL;
    while (PyDict_Next(map, &pos, &name, &inner)) {
        if (!PyUnicode_CheckExact(name)) {
            goto fail;
        }
        Py_ssize_t bytes = utf8_size(name);
        if (bytes < 0 || (top && bytes == 0)) {
            goto fail;
        }
        PyObject *canon;
        Py_ssize_t inner_size;
        Py_INCREF(name);
        Py_INCREF(inner);
        int status = canon_value(inner, depth + 1, &canon, &inner_size);
        if (status == 0) {
            if (canon != inner) { /* copy on the first change */
                if (*copy == NULL) {
                    *copy = PyDict_Copy(map);
                }
                if (*copy == NULL || PyDict_SetItem(*copy, name, canon) < 0) {
                    status = -1;
                }
            }
            Py_DECREF(canon);
        }
        Py_DECREF(name);
        Py_DECREF(inner);
        if (status < 0) {
            goto fail;
        }
        total += bytes + inner_size;
    }
    *size = total;
    return 0;
fail:
    Py_CLEAR(*copy);
    return -1;
}

/* A list's elements: *copy as for canon_map. */
static int
canon_list(PyObject *list, int depth, PyObject **copy, Py_ssize_t *size)
{
    Py_ssize_t total = 0;
    *copy = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *inner = PyList_GET_ITEM(list, i), *canon;
        Py_ssize_t inner_size;
        Py_INCREF(inner);
        int status = canon_value(inner, depth + 1, &canon, &inner_size);
        Py_DECREF(inner);
        if (status < 0) {
            goto fail;
        }
        total += inner_size;
        if (canon == inner) {
            Py_DECREF(canon);
            continue;
        }
        if (*copy == NULL) {
            *copy = PySequence_List(list); /* allocates before it reads list (see SS) */
            if (*copy == NULL || PyList_GET_SIZE(*copy) != PyList_GET_SIZE(list)) {
                Py_DECREF(canon);
                goto fail;
            }
        }
        if (i >= PyList_GET_SIZE(*copy) || PyList_SetItem(*copy, i, canon) < 0) { /* steals */
            if (i >= PyList_GET_SIZE(*copy)) {
                Py_DECREF(canon);
            }
            goto fail;
        }
    }
    *size = total;
    return 0;
fail:
    Py_CLEAR(*copy);
    return -1;
}

/* One typed value {tag: value}: *out is a new reference to its canonical
 * form (`typed` itself when already canonical), *size its item-size bytes. */
static int
canon_value(PyObject *typed, int depth, PyObject **out, Py_ssize_t *size)
{
    if (!PyDict_CheckExact(typed) || PyDict_GET_SIZE(typed) != 1) {
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value, *canon;
    PyDict_Next(typed, &pos, &key, &value);
    enum tag tag = tag_of(key);
    switch (tag) {
    case T_S:
        if (!PyUnicode_CheckExact(value) || (*size = utf8_size(value)) < 0) {
            return -1;
        }
        break;
    case T_BOOL:
        if (!PyBool_Check(value)) {
            return -1;
        }
        *size = 1;
        break;
    case T_NULL:
        if (value != Py_True) {
            return -1;
        }
        *size = 1;
        break;
    case T_N:
    case T_B:
        if ((tag == T_N ? canon_number(value, &canon, size)
                        : canon_binary(value, &canon, size)) < 0) {
            return -1;
        }
        if (canon == value) {
            Py_DECREF(canon);
            break;
        }
        *out = Py_BuildValue("{ON}", tag == T_N ? tag_N : tag_B, canon);
        return *out == NULL ? -1 : 0;
    case T_M:
    case T_L: {
        int is_map = tag == T_M;
        if (depth >= MAX_DEPTH || (is_map ? !PyDict_CheckExact(value) : !PyList_CheckExact(value))) {
            return -1;
        }
        Py_ssize_t entries = is_map ? PyDict_GET_SIZE(value) : PyList_GET_SIZE(value);
        Py_INCREF(value);
        int status = is_map ? canon_map(value, depth, 0, &canon, size)
                            : canon_list(value, depth, &canon, size);
        Py_DECREF(value);
        if (status < 0) {
            return -1;
        }
        *size += 3 + entries;
        if (canon == NULL) {
            break;
        }
        *out = Py_BuildValue("{ON}", is_map ? tag_M : tag_L, canon);
        return *out == NULL ? -1 : 0;
    }
    case T_SS:
    case T_NS:
    case T_BS: {
        if (!PyList_CheckExact(value) || PyList_GET_SIZE(value) == 0) {
            return -1;
        }
        Py_INCREF(value);
        int status = tag == T_SS ? canon_string_set(typed, value, out, size)
                                 : canon_sorted_set(typed, value, tag == T_NS, out, size);
        Py_DECREF(value);
        return status;
    }
    default:
        return -1;
    }
    Py_INCREF(typed);
    *out = typed;
    return 0;
}

/* ------------------------------------------------------------------ records */

/* Set once by configure(): orjson.dumps, {"option": OPT_SORT_KEYS}'s value,
 * xxhash.xxh3_64_intdigest and codec.Record. */
static PyObject *json_dumps, *dumps_option, *dumps_kwnames, *record_class;
PyObject *canon_hash_bytes;

/* orjson.dumps(value, option=OPT_SORT_KEYS): new bytes. */
static PyObject *
dumps_sorted(PyObject *value)
{
    PyObject *args[2] = {value, dumps_option};
    return PyObject_Vectorcall(json_dumps, args, 1, dumps_kwnames);
}

/* The key attributes of a canonical item: a new dict, and new tuples of the
 * column values (S, N: the text; B: bytes) and the tags, in key order. */
static int
key_of(PyObject *canon, PyObject *names, PyObject **key, PyObject **values, PyObject **types)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(names);
    *key = PyDict_New();
    *values = PyTuple_New(n);
    *types = PyTuple_New(n);
    if (*key == NULL || *values == NULL || *types == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(names, i), *typed, *tag, *value, *column;
        Py_ssize_t pos = 0;
        if (!PyUnicode_CheckExact(name) || (typed = PyDict_GetItemWithError(canon, name)) == NULL) {
            goto fail; /* missing: the Python path says which */
        }
        PyDict_Next(typed, &pos, &tag, &value);
        switch (tag_of(tag)) {
        case T_S:
        case T_N:
            Py_INCREF(value);
            column = value;
            break;
        case T_B:
            column = b64_decode(value);
            if (column == NULL) {
                goto fail;
            }
            break;
        default:
            goto fail; /* not a key type: the Python path raises */
        }
        PyTuple_SET_ITEM(*values, i, column);
        Py_INCREF(tag);
        PyTuple_SET_ITEM(*types, i, tag);
        if (PyDict_SetItem(*key, name, typed) < 0) {
            goto fail;
        }
    }
    return 0;
fail:
    Py_CLEAR(*key);
    Py_CLEAR(*values);
    Py_CLEAR(*types);
    return -1;
}

/* After a failed walk: None, so the Python path runs on the item (and gives
 * the error and its message); but an interrupt (KeyboardInterrupt, pitrdiff's
 * Terminated, SystemExit: not an Exception) or a MemoryError propagates. A
 * signal handler runs at the first Python code the walk calls (building the
 * Record), and clearing its exception would swallow Ctrl-C and SIGTERM. */
static PyObject *
give_up(void)
{
    if (PyErr_Occurred() != NULL &&
        (!PyErr_ExceptionMatches(PyExc_Exception) || PyErr_ExceptionMatches(PyExc_MemoryError))) {
        return NULL;
    }
    PyErr_Clear();
    Py_RETURN_NONE;
}

/* encode_record(item, key_names): a codec.Record, or None to fall back.
 * key_names: a tuple or list of str. */
static PyObject *
encode_entry(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *item, *names, *copy = NULL, *canon, *key = NULL, *values = NULL, *types = NULL;
    PyObject *text = NULL, *key_text = NULL, *fields[6] = {NULL}, *record = NULL;
    Py_ssize_t size;
    if (nargs != 2 || record_class == NULL) {
        Py_RETURN_NONE;
    }
    item = args[0];
    names = args[1];
    if (!PyDict_CheckExact(item) || !(PyTuple_CheckExact(names) || PyList_CheckExact(names))) {
        Py_RETURN_NONE;
    }
    Py_INCREF(item);
    /* A private copy of a list of names: nothing else can change it mid-walk. */
    names = PyList_CheckExact(names) ? PySequence_List(names) : Py_NewRef(names);
    if (names == NULL) {
        Py_DECREF(item);
        return give_up();
    }
    if (canon_map(item, 0, 1, &copy, &size) < 0) {
        goto finally;
    }
    canon = copy != NULL ? copy : item;
    if (key_of(canon, names, &key, &values, &types) < 0) {
        goto finally;
    }
    if ((text = dumps_sorted(canon)) == NULL || (key_text = dumps_sorted(key)) == NULL) {
        goto finally;
    }
    if (!PyBytes_CheckExact(text) || !PyBytes_CheckExact(key_text)) {
        goto finally;
    }
    fields[0] = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(key_text), PyBytes_GET_SIZE(key_text), NULL);
    fields[1] = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text), NULL);
    fields[2] = PyObject_CallOneArg(canon_hash_bytes, text);
    fields[3] = PyLong_FromSsize_t(size);
    fields[4] = values;
    fields[5] = types;
    values = types = NULL; /* owned by fields now */
    if (fields[0] && fields[1] && fields[2] && fields[3]) {
        record = PyObject_Vectorcall(record_class, fields, 6, NULL);
    }
finally:
    for (int i = 0; i < 6; i++) {
        Py_XDECREF(fields[i]);
    }
    Py_XDECREF(text);
    Py_XDECREF(key_text);
    Py_XDECREF(key);
    Py_XDECREF(values);
    Py_XDECREF(types);
    Py_XDECREF(copy);
    Py_DECREF(names);
    Py_DECREF(item);
    return record != NULL ? record : give_up();
}

/* configure(dumps, option, hash, record_class): the callables encode_record uses. */
static PyObject *
configure_entry(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *dumps, *option, *hash, *cls;
    if (!PyArg_ParseTuple(args, "OOOO:configure", &dumps, &option, &hash, &cls)) {
        return NULL;
    }
    /* Interned: orjson matches keyword names by identity. */
    PyObject *name = PyUnicode_InternFromString("option");
    PyObject *kwnames = name == NULL ? NULL : PyTuple_Pack(1, name);
    Py_XDECREF(name);
    if (kwnames == NULL) {
        return NULL;
    }
    Py_XSETREF(dumps_kwnames, kwnames);
    Py_XSETREF(json_dumps, Py_NewRef(dumps));
    Py_XSETREF(dumps_option, Py_NewRef(option));
    Py_XSETREF(canon_hash_bytes, Py_NewRef(hash));
    Py_XSETREF(record_class, Py_NewRef(cls));
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ module */

static PyObject *
canon_entry(PyObject *Py_UNUSED(module), PyObject *item)
{
    PyObject *copy, *result;
    Py_ssize_t size;
    if (!PyDict_CheckExact(item)) {
        Py_RETURN_NONE;
    }
    Py_INCREF(item);
    int status = canon_map(item, 0, 1, &copy, &size);
    Py_DECREF(item);
    if (status < 0) {
        return give_up();
    }
    result = Py_BuildValue("(Nn)", copy != NULL ? copy : Py_NewRef(item), size);
    return result != NULL ? result : give_up();
}

PyDoc_STRVAR(canonicalize_doc,
"canonicalize(item, /)\n--\n\n"
"(canonical item, item size) of a wire-form item, exactly as\n"
"pitrdiff.codec's Python walk returns them; None when the item needs that\n"
"walk (anything but well-formed, common input: it then gives the errors).");

PyDoc_STRVAR(encode_doc,
"encode_record(item, key_names, /)\n--\n\n"
"codec.encode_record of a wire-form item (key_names a tuple or list), or None\n"
"when the item needs the Python path (it then gives the errors). Needs configure().");

PyDoc_STRVAR(configure_doc,
"configure(dumps, option, hash, record_class, /)\n--\n\n"
"Set what encode_record calls: orjson.dumps with option=option (OPT_SORT_KEYS),\n"
"xxhash.xxh3_64_intdigest, and codec.Record.");

static PyMethodDef methods[] = {
    {"canonicalize", canon_entry, METH_O, canonicalize_doc},
    {"encode_record", (PyCFunction)(void (*)(void))encode_entry, METH_FASTCALL, encode_doc},
    {"configure", configure_entry, METH_VARARGS, configure_doc},
    {"encode_lines", (PyCFunction)(void (*)(void))encode_lines_entry, METH_FASTCALL,
     encode_lines_doc},
    {"items_span", items_span_entry, METH_O, items_span_doc},
    {"encode_items", (PyCFunction)(void (*)(void))encode_items_entry, METH_FASTCALL,
     encode_items_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "pitrdiff._canon",
    "The hot path of pitrdiff.codec.canonicalize in C (optional; see codec.COMPILED).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__canon(void)
{
    canon_scalars_init();
    PyObject **tags[] = {&tag_N, &tag_B, &tag_M, &tag_L, &tag_SS, &tag_NS, &tag_BS};
    const char *names[] = {"N", "B", "M", "L", "SS", "NS", "BS"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        if (*tags[i] == NULL && (*tags[i] = PyUnicode_InternFromString(names[i])) == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
