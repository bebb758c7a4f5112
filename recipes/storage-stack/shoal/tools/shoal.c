/* shoal: put and get values in a shoal segment */
#include "shoal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int usage(void) {
  fprintf(stderr, "usage: shoal version | shoal put SEGMENT KEY VALUE | shoal get SEGMENT KEY | shoal drop SEGMENT\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "version") == 0) { printf("shoal %s\n", shoal_version()); return 0; }
  if (argc == 3 && strcmp(argv[1], "drop") == 0) {
    if (shoal_unlink(argv[2]) < 0) { fprintf(stderr, "shoal: drop %s: %s\n", argv[2], strerror(errno)); return 1; }
    return 0;
  }
  if (argc < 4) return usage();
  int put = strcmp(argv[1], "put") == 0;
  if (!put && strcmp(argv[1], "get") != 0) return usage();
  if (put && argc != 5) return usage();
  if (!put && argc != 4) return usage();
  struct shoal *s = shoal_open(argv[2], put);
  if (!s) { fprintf(stderr, "shoal: segment %s: %s\n", argv[2], strerror(errno)); return 1; }
  int rc = 0;
  if (put) {
    if (shoal_put(s, argv[3], argv[4]) < 0) { fprintf(stderr, "shoal: put %s: %s\n", argv[3], strerror(errno)); rc = 1; }
  } else {
    char buf[SHOAL_VALUE_MAX + 1];
    if (shoal_get(s, argv[3], buf, sizeof buf) < 0) { fprintf(stderr, "shoal: %s: not found\n", argv[3]); rc = 1; }
    else printf("%s\n", buf);
  }
  shoal_close(s);
  return rc;
}
