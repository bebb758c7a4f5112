#define _GNU_SOURCE
#include "shoal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOAL_MAGIC 0x53484f4cu /* "SHOL" */

struct slot {
  char key[SHOAL_KEY_MAX + 1];
  char value[SHOAL_VALUE_MAX + 1];
};

struct table {
  unsigned magic;
  unsigned used;
  struct slot slots[SHOAL_SLOTS];
};

struct shoal {
  int fd;
  struct table *t;
};

const char *shoal_version(void) { return SHOAL_VERSION; }

static int segment_name(const char *name, char *out, size_t n) {
  size_t len = strlen(name);
  if (len == 0 || len > 32) { errno = EINVAL; return -1; }
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) { errno = EINVAL; return -1; }
  }
  snprintf(out, n, "/shoal-%s", name);
  return 0;
}

struct shoal *shoal_open(const char *name, int create) {
  char seg[64];
  if (segment_name(name, seg, sizeof seg) < 0) return NULL;
  int fd = shm_open(seg, O_RDWR | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return NULL;
  if (flock(fd, LOCK_EX) < 0 || ftruncate(fd, sizeof(struct table)) < 0) { int e = errno; close(fd); errno = e; return NULL; }
  struct table *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (t == MAP_FAILED) { int e = errno; close(fd); errno = e; return NULL; }
  if (t->magic != SHOAL_MAGIC) { memset(t, 0, sizeof *t); t->magic = SHOAL_MAGIC; }
  flock(fd, LOCK_UN);
  struct shoal *s = malloc(sizeof *s);
  if (!s) { munmap(t, sizeof *t); close(fd); errno = ENOMEM; return NULL; }
  s->fd = fd;
  s->t = t;
  return s;
}

void shoal_close(struct shoal *s) {
  if (!s) return;
  munmap(s->t, sizeof *s->t);
  close(s->fd);
  free(s);
}

int shoal_put(struct shoal *s, const char *key, const char *value) {
  if (strlen(key) == 0 || strlen(key) > SHOAL_KEY_MAX || strlen(value) > SHOAL_VALUE_MAX) { errno = ENAMETOOLONG; return -1; }
  flock(s->fd, LOCK_EX);
  struct slot *free_slot = NULL;
  for (unsigned i = 0; i < SHOAL_SLOTS; i++) {
    struct slot *sl = &s->t->slots[i];
    if (sl->key[0] == 0) { if (!free_slot) free_slot = sl; continue; }
    if (strcmp(sl->key, key) == 0) { strcpy(sl->value, value); flock(s->fd, LOCK_UN); return 0; }
  }
  if (!free_slot) { flock(s->fd, LOCK_UN); errno = ENOSPC; return -1; }
  strcpy(free_slot->key, key);
  strcpy(free_slot->value, value);
  s->t->used++;
  flock(s->fd, LOCK_UN);
  return 0;
}

int shoal_get(struct shoal *s, const char *key, char *buf, size_t n) {
  flock(s->fd, LOCK_SH);
  for (unsigned i = 0; i < SHOAL_SLOTS; i++) {
    struct slot *sl = &s->t->slots[i];
    if (sl->key[0] && strcmp(sl->key, key) == 0) {
      snprintf(buf, n, "%s", sl->value);
      flock(s->fd, LOCK_UN);
      return 0;
    }
  }
  flock(s->fd, LOCK_UN);
  errno = ENOENT;
  return -1;
}

int shoal_each(struct shoal *s, void (*fn)(const char *, const char *, void *), void *arg) {
  int n = 0;
  flock(s->fd, LOCK_SH);
  for (unsigned i = 0; i < SHOAL_SLOTS; i++) {
    struct slot *sl = &s->t->slots[i];
    if (sl->key[0]) { fn(sl->key, sl->value, arg); n++; }
  }
  flock(s->fd, LOCK_UN);
  return n;
}

int shoal_unlink(const char *name) {
  char seg[64];
  if (segment_name(name, seg, sizeof seg) < 0) return -1;
  return shm_unlink(seg);
}
