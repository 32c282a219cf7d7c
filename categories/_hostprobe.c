/* The host loop of a category lookup in C: `categories.hostprobe` explains it.
 *
 * HostTable(bloom, dir, fp, val, bits).hits(host) probes the name and each parent
 * suffix of two labels or more in the compiled index's name table, exactly as the
 * pure-Python `categories.hostprobe.PyHostTable` does, and returns a tuple of
 * `record_id << 32 | offset` for each listed one (offset: where the suffix starts
 * in the host's UTF-8 bytes; 0 is the name itself).  Per suffix: CRC-32 for the
 * Bloom filter bit, then (only if the bit is set) MD5 for the 64-bit name hash,
 * the bucket's range in `dir` and a binary search of its fingerprints in `fp`.
 *
 * The table holds buffer views of the mapped file until close(): the mapping can
 * only be closed after it.  Every range read from the file is checked against the
 * buffers' lengths, so a damaged file raises ValueError, never reads outside.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib.crc32) ---------------------------- */
static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, Py_ssize_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- MD5 (RFC 1321): the first 8 bytes of the digest, big-endian --------------- */
#define ROTL(x, c) (((x) << (c)) | ((x) >> (32 - (c))))
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const unsigned char md5_r[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20,
    5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(uint32_t h[4], const unsigned char *block) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] | (uint32_t)block[4 * i + 1] << 8 |
               (uint32_t)block[4 * i + 2] << 16 | (uint32_t)block[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
        else { f = c ^ (b | ~d); g = (7 * i) & 15; }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + ROTL(a + f + md5_k[i] + w[g], md5_r[i]);
        a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
}

static uint64_t md5_head64(const unsigned char *p, Py_ssize_t n) {
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    uint64_t bits = (uint64_t)n * 8;
    while (n >= 64) {
        md5_block(h, p);
        p += 64;
        n -= 64;
    }
    unsigned char last[128];
    memset(last, 0, sizeof last);
    memcpy(last, p, (size_t)n);
    last[n] = 0x80;
    Py_ssize_t size = n < 56 ? 64 : 128;
    for (int i = 0; i < 8; i++)
        last[size - 8 + i] = (unsigned char)(bits >> (8 * i));
    md5_block(h, last);
    if (size == 128)
        md5_block(h, last + 64);
    /* digest bytes 0..7 are h[0], h[1] little-endian; read them big-endian */
    uint64_t out = 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++)
            out = out << 8 | ((h[i] >> (8 * k)) & 0xFF);
    return out;
}

/* ---- HostTable ----------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    Py_buffer bloom, dir, fp, val;
    int open;
    int shift, fp_shift;
    uint32_t mask;
    Py_ssize_t buckets, entries;
} HostTable;

static void release(HostTable *self) {
    if (self->open) {
        PyBuffer_Release(&self->bloom);
        PyBuffer_Release(&self->dir);
        PyBuffer_Release(&self->fp);
        PyBuffer_Release(&self->val);
        self->open = 0;
    }
}

static int HostTable_init(HostTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"bloom", "dir", "fp", "val", "bits", NULL};
    Py_buffer bloom, dir, fp, val;
    int bits;
    release(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*y*y*i", kwlist, &bloom, &dir, &fp, &val, &bits))
        return -1;
    const char *problem = NULL;
    Py_ssize_t nbits = bloom.len * 8;
    if (bits < 1 || bits > 32)
        problem = "bucket bits must be 1..32";
    else if (dir.len != 4 * (((Py_ssize_t)1 << bits) + 1))
        problem = "dir must hold 2**bits + 1 u32";
    else if (fp.len % 4 || val.len != fp.len / 2)
        problem = "fp must hold N u32 and val N u16";
    else if (nbits == 0 || nbits & (nbits - 1) || nbits > ((Py_ssize_t)1 << 32))
        problem = "the Bloom filter must be a power of two bits";
    if (problem) {
        PyBuffer_Release(&bloom);
        PyBuffer_Release(&dir);
        PyBuffer_Release(&fp);
        PyBuffer_Release(&val);
        PyErr_SetString(PyExc_ValueError, problem);
        return -1;
    }
    self->bloom = bloom;
    self->dir = dir;
    self->fp = fp;
    self->val = val;
    self->shift = 64 - bits;
    self->fp_shift = 32 - bits;
    self->mask = (uint32_t)(nbits - 1);
    self->buckets = (Py_ssize_t)1 << bits;
    self->entries = fp.len / 4;
    self->open = 1;
    return 0;
}

static void HostTable_dealloc(HostTable *self) {
    release(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The record id of one name, -1 if not listed, -2 if the file is damaged. */
static long probe(HostTable *self, const unsigned char *name, Py_ssize_t n) {
    uint32_t c = crc32_of(name, n) & self->mask;
    const unsigned char *bloom = self->bloom.buf;
    if (!(bloom[c >> 3] >> (c & 7) & 1))
        return -1;
    uint64_t h = md5_head64(name, n);
    uint64_t b = h >> self->shift;
    uint32_t fp = (uint32_t)(h >> self->fp_shift);
    uint32_t lo, hi;
    memcpy(&lo, (const char *)self->dir.buf + 4 * b, 4);
    memcpy(&hi, (const char *)self->dir.buf + 4 * (b + 1), 4);
    if (lo > hi || hi > self->entries)
        return -2;
    const char *fps = self->fp.buf;
    uint32_t end = hi;
    while (lo < hi) {  /* bisect_left */
        uint32_t mid = lo + (hi - lo) / 2, v;
        memcpy(&v, fps + 4 * (Py_ssize_t)mid, 4);
        if (v < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < end) {
        uint32_t v;
        memcpy(&v, fps + 4 * (Py_ssize_t)lo, 4);
        if (v == fp) {
            uint16_t rid;
            memcpy(&rid, (const char *)self->val.buf + 2 * (Py_ssize_t)lo, 2);
            return rid;
        }
    }
    return -1;
}

static PyObject *HostTable_hits(HostTable *self, PyObject *host) {
    if (!self->open) {
        PyErr_SetString(PyExc_ValueError, "the category index is closed");
        return NULL;
    }
    if (!PyUnicode_Check(host)) {
        PyErr_Format(PyExc_TypeError, "hits() wants a str, not %.100s", Py_TYPE(host)->tp_name);
        return NULL;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(host, &n);  /* no copy for an ASCII str */
    if (text == NULL)
        return NULL;
    const unsigned char *s = (const unsigned char *)text;
    Py_ssize_t dots = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        dots += s[i] == '.';
    long long found[8];
    int count = 0;
    PyObject *extra = NULL;  /* a list, past 8 hits (only a crafted name has so many) */
    Py_ssize_t at = 0;
    while (dots) {  /* the name, then each parent suffix of two labels or more */
        long rid = probe(self, s + at, n - at);
        if (rid == -2) {
            Py_XDECREF(extra);
            PyErr_SetString(PyExc_ValueError, "the category index is damaged (a bucket out of range)");
            return NULL;
        }
        if (rid >= 0) {
            long long code = (long long)rid << 32 | (long long)at;
            if (count < 8) {
                found[count++] = code;
            } else {
                if (extra == NULL && (extra = PyList_New(0)) == NULL)
                    return NULL;
                PyObject *item = PyLong_FromLongLong(code);
                if (item == NULL || PyList_Append(extra, item) < 0) {
                    Py_XDECREF(item);
                    Py_DECREF(extra);
                    return NULL;
                }
                Py_DECREF(item);
            }
        }
        if (!--dots)
            break;
        const unsigned char *dot = memchr(s + at, '.', (size_t)(n - at));
        at = dot - s + 1;  /* there is one: `dots` counts those left */
    }
    Py_ssize_t more = extra ? PyList_GET_SIZE(extra) : 0;
    PyObject *out = PyTuple_New(count + more);
    if (out == NULL) {
        Py_XDECREF(extra);
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        PyObject *item = PyLong_FromLongLong(found[i]);
        if (item == NULL) {
            Py_DECREF(out);
            Py_XDECREF(extra);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    for (Py_ssize_t i = 0; i < more; i++) {
        PyObject *item = PyList_GET_ITEM(extra, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(out, count + i, item);
    }
    Py_XDECREF(extra);
    return out;
}

static PyObject *HostTable_close(HostTable *self, PyObject *Py_UNUSED(ignored)) {
    release(self);
    Py_RETURN_NONE;
}

static PyObject *name_hash64(PyObject *Py_UNUSED(module), PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint64_t h = md5_head64(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *crc32_py(PyObject *Py_UNUSED(module), PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t c = crc32_of(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef HostTable_methods[] = {
    {"hits", (PyCFunction)HostTable_hits, METH_O,
     "hits(host) -> tuple of record_id << 32 | offset, one per listed suffix, the name first."},
    {"close", (PyCFunction)HostTable_close, METH_NOARGS, "Release the buffers (hits() raises after)."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject HostTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "categories._hostprobe.HostTable",
    .tp_basicsize = sizeof(HostTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The name table of a compiled category index (see categories.hostprobe).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HostTable_init,
    .tp_dealloc = (destructor)HostTable_dealloc,
    .tp_methods = HostTable_methods,
};

static PyMethodDef module_methods[] = {
    {"name_hash64", name_hash64, METH_O, "The first 8 bytes of MD5(data), big-endian (for tests)."},
    {"crc32", crc32_py, METH_O, "CRC-32 of data, as zlib.crc32 (for tests)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "categories._hostprobe",
                                    "The host loop of a category lookup in C.", -1, module_methods};

PyMODINIT_FUNC PyInit__hostprobe(void) {
    crc_init();
    if (PyType_Ready(&HostTableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&HostTableType);
    if (PyModule_AddObject(m, "HostTable", (PyObject *)&HostTableType) < 0) {
        Py_DECREF(&HostTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
