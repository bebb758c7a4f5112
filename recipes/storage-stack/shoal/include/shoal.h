/* libshoal: a small key/value table in a POSIX shared-memory segment, shared by the processes
 * of one host (the shared-memory layer of the shoal storage stack). */
#ifndef SHOAL_H
#define SHOAL_H
#include <stddef.h>

#define SHOAL_KEY_MAX 32
#define SHOAL_VALUE_MAX 96
#define SHOAL_SLOTS 64

struct shoal;

/* the library version, "MAJOR.MINOR.PATCH" */
const char *shoal_version(void);
/* open (and create when `create`) the segment NAME ([A-Za-z0-9_-], at most 32 characters);
 * NULL with errno set on failure */
struct shoal *shoal_open(const char *name, int create);
void shoal_close(struct shoal *s);
/* 0 on success, -1 with errno (ENOSPC: table full, ENAMETOOLONG: key or value too long) */
int shoal_put(struct shoal *s, const char *key, const char *value);
/* copies the value into buf (size n); 0 found, -1 with errno ENOENT when missing */
int shoal_get(struct shoal *s, const char *key, char *buf, size_t n);
/* calls fn for every entry in slot order; returns the number of entries */
int shoal_each(struct shoal *s, void (*fn)(const char *key, const char *value, void *arg), void *arg);
/* remove the segment NAME */
int shoal_unlink(const char *name);
#endif
