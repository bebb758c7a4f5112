/* shoal-file: the file backend driver of the shoal stack: saves a segment's entries to a file
 * and loads them back (one "KEY<TAB>VALUE" line per entry), so a segment survives a reboot. */
#include "shoal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void save(const char *key, const char *value, void *arg) { fprintf((FILE *)arg, "%s\t%s\n", key, value); }

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "save") != 0 && strcmp(argv[1], "load") != 0)) {
    fprintf(stderr, "usage: shoal-file save|load SEGMENT FILE\n");
    return 2;
  }
  int load = strcmp(argv[1], "load") == 0;
  struct shoal *s = shoal_open(argv[2], load);
  if (!s) { fprintf(stderr, "shoal-file: segment %s: %s\n", argv[2], strerror(errno)); return 1; }
  FILE *f = fopen(argv[3], load ? "r" : "w");
  if (!f) { fprintf(stderr, "shoal-file: %s: %s\n", argv[3], strerror(errno)); shoal_close(s); return 1; }
  int rc = 0;
  if (load) {
    char line[SHOAL_KEY_MAX + SHOAL_VALUE_MAX + 4];
    while (fgets(line, sizeof line, f)) {
      char *tab = strchr(line, '\t');
      if (!tab) continue;
      *tab = 0;
      tab[1 + strcspn(tab + 1, "\n")] = 0;
      if (shoal_put(s, line, tab + 1) < 0) { fprintf(stderr, "shoal-file: %s: %s\n", line, strerror(errno)); rc = 1; }
    }
  } else {
    shoal_each(s, save, f);
  }
  if (fclose(f) != 0) rc = 1;
  shoal_close(s);
  return rc;
}
