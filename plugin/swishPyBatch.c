/*
 * swish_batch: a small CPython extension that computes Swish in place over a list of float32 arrays with one call of
 * the kernels library's swish_forward_host_many (swishCApi.h).
 *
 * Why it exists: the Triton Python-backend models compute each request of a CPU batch in place. Through ctypes that
 * takes several Python operations per request (the array's address, its size, two list appends) and each costs
 * microseconds inside Triton's stub, which sleeps between batches; here the list is walked in C through the buffer
 * protocol. The function to call is passed as an address (the caller takes it from the library it loaded with
 * ctypes), so this module links against nothing but the interpreter that imports it.
 *
 * Built against the stable ABI of Python 3.11 (the buffer protocol joined the limited API there): one build serves
 * every later Python. The models fall back to ctypes where it is missing (swish_triton/kernels/library.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

typedef int (*SwishForwardHostMany)(
    int dtype, int64_t count, const void* const* in, void* const* out, const int64_t* n, float beta);

/* Above this many elements in a call the kernel runs without the GIL (about a millisecond of work at the least). */
#define SWISH_RELEASE_GIL_ELEMENTS (1 << 20)

/*
 * forward_in_place(function, arrays, beta) -> status
 *
 * function: address of swish_forward_host_many; arrays: a list of writable, C-contiguous float32 buffers (NumPy
 * arrays), each overwritten with its Swish; beta: a float. Returns the kernel's status (0: done; otherwise nothing
 * was written and swish_last_error() says why). Raises TypeError or BufferError, before any computation, for an
 * item that is not such a buffer; the caller then takes another way.
 */
static PyObject* forward_in_place(PyObject* self, PyObject* const* args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3)
    {
        PyErr_SetString(PyExc_TypeError, "forward_in_place(function, arrays, beta) takes 3 arguments");
        return NULL;
    }
    void* const function = PyLong_AsVoidPtr(args[0]);
    if (function == NULL)
    {
        if (!PyErr_Occurred())
        {
            PyErr_SetString(PyExc_ValueError, "forward_in_place: null function address");
        }
        return NULL;
    }
    PyObject* const arrays = args[1];
    if (!PyList_Check(arrays))
    {
        PyErr_SetString(PyExc_TypeError, "forward_in_place: arrays must be a list");
        return NULL;
    }
    double const beta = PyFloat_AsDouble(args[2]);
    if (beta == -1.0 && PyErr_Occurred())
    {
        return NULL;
    }
    Py_ssize_t const count = PyList_Size(arrays);
    if (count == 0)
    {
        return PyLong_FromLong(0);
    }
    /* One allocation for the views, the data pointers and the counts. */
    size_t const each = sizeof(Py_buffer) + sizeof(void*) + sizeof(int64_t);
    if ((size_t) count > SIZE_MAX / each)
    {
        return PyErr_NoMemory();
    }
    char* const memory = PyMem_Malloc((size_t) count * each);
    if (memory == NULL)
    {
        return PyErr_NoMemory();
    }
    Py_buffer* const views = (Py_buffer*) memory;
    void** const data = (void**) (memory + (size_t) count * sizeof(Py_buffer));
    int64_t* const sizes = (int64_t*) (memory + (size_t) count * (sizeof(Py_buffer) + sizeof(void*)));

    Py_ssize_t held = 0;
    int64_t total = 0;
    PyObject* result = NULL;
    for (; held < count; ++held)
    {
        PyObject* const item = PyList_GetItem(arrays, held); /* borrowed */
        if (item == NULL || PyObject_GetBuffer(item, &views[held], PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS))
        {
            goto done;
        }
        Py_buffer const* const view = &views[held];
        char const* const format = view->format ? view->format : "B";
        int const isFloat32 = view->itemsize == 4 && (strcmp(format, "f") == 0 || strcmp(format, "=f") == 0);
        if (!isFloat32 || view->len % 4 != 0)
        {
            PyErr_Format(PyExc_TypeError, "forward_in_place: array %zd is not float32 (format '%s', item size %zd)",
                held, format, view->itemsize);
            ++held; /* release this view too */
            goto done;
        }
        data[held] = view->buf;
        sizes[held] = (int64_t) (view->len / 4);
        total += sizes[held];
    }
    {
        SwishForwardHostMany const forward = (SwishForwardHostMany) function;
        int status;
        if (total > SWISH_RELEASE_GIL_ELEMENTS)
        {
            Py_BEGIN_ALLOW_THREADS;
            status = forward(0, (int64_t) count, (const void* const*) data, data, sizes, (float) beta);
            Py_END_ALLOW_THREADS;
        }
        else
        {
            status = forward(0, (int64_t) count, (const void* const*) data, data, sizes, (float) beta);
        }
        result = PyLong_FromLong(status);
    }
done:
    for (Py_ssize_t i = 0; i < held; ++i)
    {
        PyBuffer_Release(&views[i]);
    }
    PyMem_Free(memory);
    return result;
}

static PyMethodDef swishBatchMethods[] = {
    {"forward_in_place", (PyCFunction) (void (*)(void)) forward_in_place, METH_FASTCALL,
        "forward_in_place(function, arrays, beta) -> status: Swish over a list of float32 arrays, in place, with one "
        "call of swish_forward_host_many at address `function`."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef swishBatchModule = {
    PyModuleDef_HEAD_INIT,
    "swish_batch",
    "Swish in place over a list of float32 arrays with one call of the kernels library (plugin/swishPyBatch.c).",
    -1,
    swishBatchMethods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit_swish_batch(void)
{
    return PyModule_Create(&swishBatchModule);
}
