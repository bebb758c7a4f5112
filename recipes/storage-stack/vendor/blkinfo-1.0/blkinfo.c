/* blkinfo 1.0: print the size in bytes of block devices or regular files (upstream source, as
 * released; the storage stack ships it patched, see ../../patches/). */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int size_of(const char *path, uint64_t *bytes) {
  struct stat st;
  int fd = open(path, O_RDONLY);
  if (fd < 0 || fstat(fd, &st) < 0) { if (fd >= 0) close(fd); return -1; }
  int rc = 0;
  if (S_ISBLK(st.st_mode)) rc = ioctl(fd, BLKGETSIZE64, bytes);
  else *bytes = (uint64_t)st.st_size;
  close(fd);
  return rc;
}

int main(int argc, char **argv) {
  int rc = 0;
  if (argc < 2) { fprintf(stderr, "usage: blkinfo DEVICE...\n"); return 2; }
  for (int i = 1; i < argc; i++) {
    uint64_t bytes;
    if (size_of(argv[i], &bytes) < 0) { perror(argv[i]); rc = 1; continue; }
    printf("%s %llu\n", argv[i], (unsigned long long)bytes);
  }
  return rc;
}
