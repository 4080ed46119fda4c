/* Optional C versions of the flame graph decoder's hot loops (watcher/flamegraph/decode.py).
 *
 * Each function here answers exactly what its Python counterpart answers, or returns None
 * when the input is anything but the plain, well-formed case; the Python code then does the
 * work (and raises the error, naming the level and node) as it does without this module.
 * So the module can only make decoding faster, never change a result or an error: the
 * tests run every decoder with and without it and compare.
 *
 *   int_levels(span)                     the levels array of a protojson response, as ints
 *   layout(levels, width, col)           one side's absolute layout of a tiled graph
 *   function_sums(levels, bounds, ...)   per function self and total of one side
 *
 * Every value read from the wire fits in an int64 and is never negative here; sums are
 * checked for overflow.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DIGITS 19 /* 9223372036854775807 */

/* -- int_levels ------------------------------------------------------------------------- */

typedef struct {
    const char *p;
    const char *end;
} Cursor;

static int
take(Cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* One space may follow a comma or a colon, as protojson writes with its multiline option
 * off ("," or ", " at random, to keep output unstable on purpose). */
static void
skip_space(Cursor *c)
{
    if (c->p < c->end && *c->p == ' ')
        c->p++;
}

/* A quoted run of digits with no leading zero, at most 19 digits, at most INT64_MAX. */
static PyObject *
take_value(Cursor *c)
{
    if (c->p >= c->end || *c->p != '"')
        return NULL;
    c->p++;
    const char *start = c->p;
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (c->p - start >= MAX_DIGITS)
            return NULL;
        v = v * 10 + (uint64_t)(*c->p - '0');
        c->p++;
    }
    Py_ssize_t n = c->p - start;
    if (n == 0 || (n > 1 && *start == '0') || v > (uint64_t)INT64_MAX)
        return NULL;
    if (c->p >= c->end || *c->p != '"')
        return NULL;
    c->p++;
    return PyLong_FromLongLong((long long)v);
}

/* {} -> None; {"values":[...]} -> list of ints; NULL (no exception) when not that shape. */
static PyObject *
take_level(Cursor *c, int *failed)
{
    *failed = 1;
    if (!take(c, "{"))
        return NULL;
    if (take(c, "}")) {
        *failed = 0;
        Py_RETURN_NONE;
    }
    if (!take(c, "\"values\":"))
        return NULL;
    skip_space(c);
    if (!take(c, "["))
        return NULL;
    PyObject *values = PyList_New(0);
    if (values == NULL) {
        *failed = 0;
        return NULL;
    }
    if (!take(c, "]")) {
        for (;;) {
            PyObject *v = take_value(c);
            if (v == NULL) {
                if (PyErr_Occurred())
                    *failed = 0;
                Py_DECREF(values);
                return NULL;
            }
            int err = PyList_Append(values, v);
            Py_DECREF(v);
            if (err < 0) {
                *failed = 0;
                Py_DECREF(values);
                return NULL;
            }
            if (take(c, "]"))
                break;
            if (!take(c, ",")) {
                Py_DECREF(values);
                return NULL;
            }
            skip_space(c);
        }
    }
    if (!take(c, "}")) {
        Py_DECREF(values);
        return NULL;
    }
    *failed = 0;
    return values;
}

static PyObject *
int_levels(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Cursor c = {(const char *)view.buf, (const char *)view.buf + view.len};
    PyObject *levels = PyList_New(0);
    if (levels == NULL)
        goto error;
    if (!take(&c, "["))
        goto unsure;
    for (;;) {
        int failed;
        PyObject *level = take_level(&c, &failed);
        if (level == NULL) {
            if (failed)
                goto unsure;
            goto error;
        }
        int err = PyList_Append(levels, level);
        Py_DECREF(level);
        if (err < 0)
            goto error;
        if (take(&c, "]"))
            break;
        if (!take(&c, ","))
            goto unsure;
        skip_space(&c);
    }
    if (c.p != c.end)
        goto unsure;
    PyBuffer_Release(&view);
    return levels;
unsure:
    PyBuffer_Release(&view);
    Py_DECREF(levels);
    Py_RETURN_NONE;
error:
    PyBuffer_Release(&view);
    Py_XDECREF(levels);
    return NULL;
}

/* -- reading levels ------------------------------------------------------------------------ */

/* A non-negative int64 from an exact int, or -1 when it is anything else. */
static inline int64_t
wire_value(PyObject *v)
{
    if (!PyLong_CheckExact(v))
        return -1;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < 0) {
        if (x == -1 && PyErr_Occurred())
            PyErr_Clear();
        return -1;
    }
    return (int64_t)x;
}

typedef struct {
    Py_ssize_t n;    /* nodes */
    int64_t *x;      /* absolute start */
    int64_t *end;    /* x + total */
    int64_t *self;
    int64_t *total;
} Level;

static void
free_levels(Level *lv, Py_ssize_t count)
{
    if (lv == NULL)
        return;
    for (Py_ssize_t d = 0; d < count; d++)
        PyMem_Free(lv[d].x);
    PyMem_Free(lv);
}

/* Read one side (x delta at col, then total, then self) of every level into absolute
 * layouts. Returns 1 on success, 0 when unsure (no exception), -1 on a Python error. */
static int
read_side(PyObject *levels, Py_ssize_t width, Py_ssize_t col, Level **out, Py_ssize_t *count)
{
    Py_ssize_t n_levels = PyList_GET_SIZE(levels);
    Level *lv = PyMem_Calloc(n_levels ? (size_t)n_levels : 1, sizeof(Level));
    if (lv == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *out = lv;
    *count = 0;
    for (Py_ssize_t d = 0; d < n_levels; d++) {
        PyObject *values = PyList_GET_ITEM(levels, d);
        if (!PyList_CheckExact(values))
            return 0;
        Py_ssize_t len = PyList_GET_SIZE(values);
        if (len % width)
            return 0;
        Py_ssize_t n = len / width;
        int64_t *mem = PyMem_Malloc((n ? (size_t)n : 1) * 4 * sizeof(int64_t));
        if (mem == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        lv[d].n = n;
        lv[d].x = mem;
        lv[d].end = mem + n;
        lv[d].self = mem + 2 * n;
        lv[d].total = mem + 3 * n;
        *count = d + 1;
        PyObject **items = ((PyListObject *)values)->ob_item;
        int64_t pos = 0;
        for (Py_ssize_t j = 0; j < n; j++) {
            PyObject **node = items + j * width + col;
            int64_t delta = wire_value(node[0]);
            int64_t total = wire_value(node[1]);
            int64_t self = wire_value(node[2]);
            if (delta < 0 || total < 0 || self < 0 || self > total)
                return 0;
            int64_t x, end;
            if (__builtin_add_overflow(pos, delta, &x) || __builtin_add_overflow(x, total, &end))
                return 0;
            lv[d].x[j] = x;
            lv[d].end[j] = end;
            lv[d].self[j] = self;
            lv[d].total[j] = total;
            pos = end;
        }
    }
    return 1;
}

/* Whether the nodes of `level` with a width exactly fill the child spans ([x + self, end)
 * of every node with total > self) of `upper`, in order. */
static int
tiles(const Level *upper, const Level *level)
{
    Py_ssize_t j = 0;
    for (Py_ssize_t k = 0; k < upper->n; k++) {
        if (upper->total[k] <= upper->self[k])
            continue;
        int64_t pos = upper->x[k] + upper->self[k];
        int64_t stop = upper->end[k];
        while (pos < stop) {
            while (j < level->n && level->total[j] == 0)
                j++;
            if (j == level->n || level->x[j] != pos)
                return 0;
            pos = level->end[j];
            j++;
        }
        if (pos != stop)
            return 0;
    }
    while (j < level->n && level->total[j] == 0)
        j++;
    return j == level->n;
}

static int
parse_side_args(PyObject *args, PyObject **levels, Py_ssize_t *width, Py_ssize_t *col)
{
    if (!PyArg_ParseTuple(args, "O!nn", &PyList_Type, levels, width, col))
        return 0;
    if (*width < 3 || *col < 0 || *col + 3 > *width) {
        PyErr_SetString(PyExc_ValueError, "bad width or column");
        return 0;
    }
    return 1;
}

/* layout(levels, width, col) -> (bounds, consistent) | None
 *
 * bounds: per level, the x and end of every node alternating, as _layout keeps them.
 * None unless every level is well formed and tiles the child spans of the level above. */
static PyObject *
layout(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *levels;
    Py_ssize_t width, col;
    if (!parse_side_args(args, &levels, &width, &col))
        return NULL;
    Level *lv = NULL;
    Py_ssize_t count = 0;
    PyObject *bounds = NULL;
    int read = read_side(levels, width, col, &lv, &count);
    if (read <= 0)
        goto done;
    int64_t room = 0;
    for (Py_ssize_t d = 0; d < count; d++) {
        int64_t used = 0, selfs = 0;
        for (Py_ssize_t j = 0; j < lv[d].n; j++) {
            if (__builtin_add_overflow(used, lv[d].total[j], &used) ||
                __builtin_add_overflow(selfs, lv[d].self[j], &selfs)) {
                read = 0;
                goto done;
            }
        }
        if (d > 0 && (used != room || !tiles(&lv[d - 1], &lv[d]))) {
            read = 0;
            goto done;
        }
        room = used - selfs;
    }
    bounds = PyList_New(count);
    if (bounds == NULL) {
        read = -1;
        goto done;
    }
    for (Py_ssize_t d = 0; d < count; d++) {
        PyObject *level = PyList_New(2 * lv[d].n);
        if (level == NULL) {
            read = -1;
            goto done;
        }
        PyList_SET_ITEM(bounds, d, level);
        for (Py_ssize_t j = 0; j < lv[d].n; j++) {
            PyObject *x = PyLong_FromLongLong(lv[d].x[j]);
            PyObject *end = x ? PyLong_FromLongLong(lv[d].end[j]) : NULL;
            if (end == NULL) {
                Py_XDECREF(x);
                read = -1;
                goto done;
            }
            PyList_SET_ITEM(level, 2 * j, x);
            PyList_SET_ITEM(level, 2 * j + 1, end);
        }
    }
    PyObject *result = Py_BuildValue("(NO)", bounds, room ? Py_False : Py_True);
    bounds = NULL;
    free_levels(lv, count);
    return result;
done:
    free_levels(lv, count);
    Py_XDECREF(bounds);
    if (read < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* -- function_sums ----------------------------------------------------------------------- */

/* One stable merge pass: runs of `run` sorted entries in `src` -> runs of 2 * run in `dst`.
 * Entries are node numbers, ordered by key. */
static void
merge_runs(const int64_t *key, const Py_ssize_t *bounds, Py_ssize_t n_runs, const Py_ssize_t *src,
           Py_ssize_t *dst, Py_ssize_t *next_bounds, Py_ssize_t *next_runs)
{
    Py_ssize_t out = 0, r = 0, m = 0;
    next_bounds[0] = 0;
    while (r < n_runs) {
        Py_ssize_t a = bounds[r], a_end = bounds[r + 1];
        Py_ssize_t b = a_end, b_end = r + 1 < n_runs ? bounds[r + 2] : a_end;
        while (a < a_end && b < b_end) {
            /* ties take the left run's node: the smaller depth comes first */
            if (key[src[b]] < key[src[a]])
                dst[out++] = src[b++];
            else
                dst[out++] = src[a++];
        }
        while (a < a_end)
            dst[out++] = src[a++];
        while (b < b_end)
            dst[out++] = src[b++];
        next_bounds[++m] = out;
        r += 2;
    }
    *next_runs = m;
}

/* function_sums(levels, width, col, name_count, canonical) -> (selfs, totals, present) | None
 *
 * Per function index: the sum of selfs and the total with a recursive frame counted once,
 * over every node below the root of one side; present lists, in increasing order, the
 * function indices with a width on that side. canonical (a list, or None) maps a name
 * index to the first index of the same name. The side must be consistent (the caller
 * checks); as in _total_values, a node's total counts unless it starts before the end of
 * the last counted span of its name, visiting the nodes in pre-order (x, then depth). */
static PyObject *
function_sums(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *levels, *canonical;
    Py_ssize_t width, col, n_names;
    if (!PyArg_ParseTuple(args, "O!nnnO", &PyList_Type, &levels, &width, &col, &n_names,
                          &canonical))
        return NULL;
    if (width < 4 || col < 0 || col + 3 > width - 1 || n_names < 0) {
        PyErr_SetString(PyExc_ValueError, "bad width, column or name count");
        return NULL;
    }
    if (canonical != Py_None &&
        (!PyList_CheckExact(canonical) || PyList_GET_SIZE(canonical) != n_names)) {
        PyErr_SetString(PyExc_ValueError, "canonical must be a list of name_count ints or None");
        return NULL;
    }
    Level *lv = NULL;
    Py_ssize_t count = 0;
    int64_t *sums = NULL, *covered = NULL, *xs = NULL, *ends = NULL, *totals = NULL;
    Py_ssize_t *names = NULL, *order = NULL, *spare = NULL, *runs = NULL, *spare_runs = NULL;
    char *present = NULL;
    PyObject *result = NULL;
    int status = read_side(levels, width, col, &lv, &count);
    if (status <= 0)
        goto done;
    Py_ssize_t n = 0;
    for (Py_ssize_t d = 1; d < count; d++)
        n += lv[d].n;
    size_t names_size = n_names ? (size_t)n_names : 1, nodes_size = n ? (size_t)n : 1;
    sums = PyMem_Calloc(2 * names_size, sizeof(int64_t));
    covered = PyMem_Malloc(names_size * sizeof(int64_t));
    present = PyMem_Calloc(names_size, 1);
    xs = PyMem_Malloc(3 * nodes_size * sizeof(int64_t));
    names = PyMem_Malloc(nodes_size * sizeof(Py_ssize_t));
    order = PyMem_Malloc(2 * nodes_size * sizeof(Py_ssize_t));
    runs = PyMem_Malloc(2 * ((size_t)count + 1) * sizeof(Py_ssize_t));
    if (!sums || !covered || !present || !xs || !names || !order || !runs) {
        PyErr_NoMemory();
        status = -1;
        goto done;
    }
    int64_t *selfs = sums, *tsums = sums + names_size;
    ends = xs + nodes_size;
    totals = xs + 2 * nodes_size;
    spare = order + nodes_size;
    spare_runs = runs + count + 1;
    for (Py_ssize_t i = 0; i < n_names; i++)
        covered[i] = -1;

    /* Selfs, and the nodes with a width, level after level (each sorted by x). */
    Py_ssize_t m = 0, n_runs = 0;
    runs[0] = 0;
    for (Py_ssize_t d = 1; d < count; d++) {
        PyObject **items = ((PyListObject *)PyList_GET_ITEM(levels, d))->ob_item;
        for (Py_ssize_t j = 0; j < lv[d].n; j++) {
            int64_t raw = wire_value(items[j * width + width - 1]);
            if (raw < 0 || raw >= n_names) {
                status = 0;
                goto done;
            }
            Py_ssize_t i = (Py_ssize_t)raw;
            if (canonical != Py_None) {
                int64_t first = wire_value(PyList_GET_ITEM(canonical, i));
                if (first < 0 || first >= n_names) {
                    status = 0;
                    goto done;
                }
                i = (Py_ssize_t)first;
            }
            if (lv[d].total[j] == 0)
                continue; /* no width: adds nothing, and is not there */
            present[i] = 1;
            if (__builtin_add_overflow(selfs[i], lv[d].self[j], &selfs[i])) {
                status = 0;
                goto done;
            }
            xs[m] = lv[d].x[j];
            ends[m] = lv[d].end[j];
            totals[m] = lv[d].total[j];
            names[m] = i;
            order[m] = m;
            m++;
        }
        if (m > runs[n_runs])
            runs[++n_runs] = m;
    }

    /* Pre-order: merge the levels' runs, stably, until one is left. */
    Py_ssize_t *src = order, *dst = spare, *rb = runs, *nb = spare_runs;
    while (n_runs > 1) {
        Py_ssize_t next_runs;
        merge_runs(xs, rb, n_runs, src, dst, nb, &next_runs);
        Py_ssize_t *t = src;
        src = dst;
        dst = t;
        t = rb;
        rb = nb;
        nb = t;
        n_runs = next_runs;
    }
    for (Py_ssize_t k = 0; k < m; k++) {
        Py_ssize_t j = src[k];
        Py_ssize_t i = names[j];
        if (xs[j] >= covered[i]) {
            if (__builtin_add_overflow(tsums[i], totals[j], &tsums[i])) {
                status = 0;
                goto done;
            }
            covered[i] = ends[j];
        }
    }

    PyObject *self_list = PyList_New(n_names);
    PyObject *total_list = self_list ? PyList_New(n_names) : NULL;
    PyObject *present_list = total_list ? PyList_New(0) : NULL;
    if (present_list == NULL) {
        Py_XDECREF(self_list);
        Py_XDECREF(total_list);
        status = -1;
        goto done;
    }
    result = Py_BuildValue("(NNN)", self_list, total_list, present_list);
    if (result == NULL) {
        status = -1;
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_names; i++) {
        PyObject *s = PyLong_FromLongLong(selfs[i]);
        PyObject *t = s ? PyLong_FromLongLong(tsums[i]) : NULL;
        if (t == NULL) {
            Py_XDECREF(s);
            status = -1;
            goto done;
        }
        PyList_SET_ITEM(self_list, i, s);
        PyList_SET_ITEM(total_list, i, t);
        if (present[i]) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(present_list, index) < 0) {
                Py_XDECREF(index);
                status = -1;
                goto done;
            }
            Py_DECREF(index);
        }
    }
    status = 1;
done:
    free_levels(lv, count);
    PyMem_Free(sums);
    PyMem_Free(covered);
    PyMem_Free(present);
    PyMem_Free(xs);
    PyMem_Free(names);
    PyMem_Free(order);
    PyMem_Free(runs);
    if (status == 1)
        return result;
    Py_XDECREF(result);
    if (status < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* -- module ------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"int_levels", int_levels, METH_O,
     "The levels array of a protojson flame graph as lists of ints (None for {}), or None."},
    {"layout", layout, METH_VARARGS,
     "(bounds, consistent) of one side of a tiled graph's levels, or None."},
    {"function_sums", function_sums, METH_VARARGS,
     "(selfs, totals, present) per function index of one consistent side, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_speedups",
    .m_doc = "C versions of the flame graph decoder's hot loops (see decode.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module_def);
}
