/* shoal-inspect: list every entry of a shoal segment (the inspection tool of shoal-tools) */
#include "shoal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void show(const char *key, const char *value, void *arg) {
  (void)arg;
  printf("%s\t%s\n", key, value);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: shoal-inspect SEGMENT\n"); return 2; }
  struct shoal *s = shoal_open(argv[1], 0);
  if (!s) { fprintf(stderr, "shoal-inspect: segment %s: %s\n", argv[1], strerror(errno)); return 1; }
  int n = shoal_each(s, show, NULL);
  fprintf(stderr, "%d entries\n", n);
  shoal_close(s);
  return 0;
}
