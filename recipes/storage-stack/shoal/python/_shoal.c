/* _shoal: Python bindings of libshoal (python3-shoal) */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include "shoal.h"

static PyObject *open_seg(const char *name, int create, struct shoal **out) {
  *out = shoal_open(name, create);
  if (!*out) return PyErr_SetFromErrnoWithFilename(PyExc_OSError, name);
  return Py_None;
}

static PyObject *py_version(PyObject *self, PyObject *args) {
  (void)self; (void)args;
  return PyUnicode_FromString(shoal_version());
}

static PyObject *py_put(PyObject *self, PyObject *args) {
  const char *seg, *key, *value;
  struct shoal *s;
  (void)self;
  if (!PyArg_ParseTuple(args, "sss", &seg, &key, &value)) return NULL;
  if (!open_seg(seg, 1, &s)) return NULL;
  int rc = shoal_put(s, key, value);
  int e = errno;
  shoal_close(s);
  if (rc < 0) { errno = e; return PyErr_SetFromErrno(PyExc_OSError); }
  Py_RETURN_NONE;
}

static PyObject *py_get(PyObject *self, PyObject *args) {
  const char *seg, *key;
  struct shoal *s;
  char buf[SHOAL_VALUE_MAX + 1];
  (void)self;
  if (!PyArg_ParseTuple(args, "ss", &seg, &key)) return NULL;
  if (!open_seg(seg, 0, &s)) return NULL;
  int rc = shoal_get(s, key, buf, sizeof buf);
  shoal_close(s);
  if (rc < 0) { PyErr_SetString(PyExc_KeyError, key); return NULL; }
  return PyUnicode_FromString(buf);
}

static PyMethodDef methods[] = {
  {"version", py_version, METH_NOARGS, "libshoal's version"},
  {"put", py_put, METH_VARARGS, "put(segment, key, value)"},
  {"get", py_get, METH_VARARGS, "get(segment, key) -> value; KeyError when missing"},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_shoal", "libshoal bindings", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__shoal(void) { return PyModule_Create(&module); }
