/* The common case of `categories.normalise.normalise_url` in C.
 *
 * simple_url(url, cls) -> cls(...) or None.  It accepts exactly the URLs that the
 * Python fast path accepts as a plain name (the `_FAST_URL` regular expression and
 * the checks after it), and builds the same 7-tuple of `cls` (NormalisedURL):
 *
 *     (https?)://NAME(:PORT)?(/PATH)?(?QUERY)?(#ANYTHING)?
 *
 * NAME: labels of [a-z0-9_-], one dot between them, the last starting with [a-z_],
 * each at most 63 and all at most 253 characters; PORT: 1-5 digits, below 65536;
 * PATH: no ? # % \ or character <= 0x20, and no "/."; QUERY: no # or character
 * <= 0x20.  The string must be ASCII.  Anything else gives None, and Python goes
 * on as before (tests compare the two on generated URLs).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *s_name, *s_http, *s_https, *s_slash, *s_empty;

static int is_label_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static PyObject *simple_url(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "simple_url(url, cls) takes 2 arguments");
        return NULL;
    }
    PyObject *url = args[0];
    PyTypeObject *cls = (PyTypeObject *)args[1];
    if (!PyType_Check(args[1]) || !PyType_IsSubtype(cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "simple_url: cls must be a tuple type");
        return NULL;
    }
    if (!PyUnicode_Check(url) || !PyUnicode_IS_ASCII(url))
        Py_RETURN_NONE;
    const unsigned char *s = PyUnicode_1BYTE_DATA(url);
    Py_ssize_t n = PyUnicode_GET_LENGTH(url), p;
    PyObject *scheme;
    long port;
    if (n >= 8 && memcmp(s, "https://", 8) == 0) {
        scheme = s_https, port = 443, p = 8;
    } else if (n >= 7 && memcmp(s, "http://", 7) == 0) {
        scheme = s_http, port = 80, p = 7;
    } else {
        Py_RETURN_NONE;
    }
    /* NAME */
    Py_ssize_t host_start = p, label = 0;
    unsigned char first = 0;  /* the first character of the current label */
    for (; p < n; p++) {
        unsigned char c = s[p];
        if (is_label_char(c)) {
            if (label == 0)
                first = c;
            if (++label > 63)
                Py_RETURN_NONE;
        } else if (c == '.') {
            if (label == 0)
                Py_RETURN_NONE;  /* an empty label, or a leading dot */
            label = 0;
        } else {
            break;
        }
    }
    Py_ssize_t host_end = p;
    if (label == 0 || !((first >= 'a' && first <= 'z') || first == '_') || host_end - host_start > 253)
        Py_RETURN_NONE;  /* no host, a trailing dot, a last label like an IPv4 part, too long */
    /* :PORT */
    if (p < n && s[p] == ':') {
        Py_ssize_t digits = 0;
        long value = 0;
        for (p++; p < n && s[p] >= '0' && s[p] <= '9'; p++) {
            if (++digits > 5)
                Py_RETURN_NONE;
            value = value * 10 + (s[p] - '0');
        }
        if (digits == 0 || value > 65535)
            Py_RETURN_NONE;
        port = value;
    }
    /* /PATH */
    Py_ssize_t path_start = -1, path_end = -1;
    if (p < n && s[p] == '/') {
        path_start = p;
        for (p++; p < n; p++) {
            unsigned char c = s[p];
            if (c == '?' || c == '#' || c == '%' || c == '\\' || c <= 0x20)
                break;
            if (c == '.' && s[p - 1] == '/')
                Py_RETURN_NONE;  /* a dot segment: the general path resolves it */
        }
        path_end = p;
    }
    /* ?QUERY */
    Py_ssize_t query_start = -1, query_end = -1;
    if (p < n && s[p] == '?') {
        query_start = ++p;
        while (p < n && s[p] != '#' && s[p] > 0x20)
            p++;
        query_end = p;
    }
    /* #FRAGMENT, or the end */
    if (p < n && s[p] != '#')
        Py_RETURN_NONE;

    PyObject *host = PyUnicode_Substring(url, host_start, host_end);
    PyObject *path = path_start >= 0 && path_end - path_start > 1 ? PyUnicode_Substring(url, path_start, path_end)
                                                                   : Py_NewRef(s_slash);
    PyObject *query = query_start >= 0 && query_end > query_start ? PyUnicode_Substring(url, query_start, query_end)
                                                                   : Py_NewRef(s_empty);
    PyObject *port_obj = PyLong_FromLong(port);
    PyObject *out = NULL;
    if (host && path && query && port_obj)
        out = cls->tp_alloc(cls, 7);
    if (out == NULL) {
        Py_XDECREF(host);
        Py_XDECREF(path);
        Py_XDECREF(query);
        Py_XDECREF(port_obj);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, Py_NewRef(s_name));
    PyTuple_SET_ITEM(out, 1, Py_NewRef(scheme));
    PyTuple_SET_ITEM(out, 2, host);
    PyTuple_SET_ITEM(out, 3, port_obj);
    PyTuple_SET_ITEM(out, 4, path);
    PyTuple_SET_ITEM(out, 5, query);
    PyTuple_SET_ITEM(out, 6, Py_NewRef(s_empty));
    return out;
}

static PyMethodDef module_methods[] = {
    {"simple_url", (PyCFunction)(void (*)(void))simple_url, METH_FASTCALL,
     "simple_url(url, cls) -> cls(kind, scheme, host, port, path, query, problem) or None."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "categories._fasturl",
                                    "The common case of normalise_url in C.", -1, module_methods};

PyMODINIT_FUNC PyInit__fasturl(void) {
    s_name = PyUnicode_InternFromString("name");
    s_http = PyUnicode_InternFromString("http");
    s_https = PyUnicode_InternFromString("https");
    s_slash = PyUnicode_InternFromString("/");
    s_empty = PyUnicode_InternFromString("");
    if (!s_name || !s_http || !s_https || !s_slash || !s_empty)
        return NULL;
    return PyModule_Create(&module);
}
