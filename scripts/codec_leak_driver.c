// Leak/robustness driver for the CFolioImage shim (run by scripts/check_codec_leaks.sh under valgrind).
// For every file given: decode it whole, then every prefix at 37 cut points, then copies with bytes damaged,
// each through probe + decode, several times. Prints a summary of result codes; valgrind reports leaks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CFolioImage.h"

static int is_png(const uint8_t *d, size_t n) { return n >= 8 && d[0] == 0x89 && d[1] == 'P'; }

static int run(const uint8_t *data, size_t size, int counts[8]) {
  folio_image_result r;
  int png = is_png(data, size);
  int code = png ? folio_png_probe(data, size, &r) : folio_jpeg_probe(data, size, &r);
  if (code == FOLIO_IMAGE_OK) {
    size_t need = (size_t)r.width * r.height * 3;
    if (need == 0 || need > 64u * 1024 * 1024) {
      counts[7]++;
      return 7;
    }
    uint8_t *out = malloc(need);
    code = png ? folio_png_decode_rgb(data, size, out, need, &r) : folio_jpeg_decode_rgb(data, size, out, need, &r);
    free(out);
  }
  counts[code < 0 || code > 6 ? 6 : code]++;
  return code;
}

int main(int argc, char **argv) {
  int counts[8] = {0};
  unsigned seed = 12345;
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) continue;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) return 2;
    fclose(f);
    for (int rep = 0; rep < 3; rep++) {
      run(data, (size_t)n, counts);
      for (int cut = 1; cut <= 37; cut++) run(data, (size_t)n * cut / 38, counts);
      uint8_t *copy = malloc((size_t)n);
      for (int k = 0; k < 20; k++) {
        memcpy(copy, data, (size_t)n);
        for (int j = 0; j < 16; j++) {
          seed = seed * 1103515245u + 12345u;
          copy[8 + (seed >> 8) % (unsigned)(n - 8)] ^= (uint8_t)(seed >> 3) | 1;
        }
        run(copy, (size_t)n, counts);
      }
      free(copy);
    }
    free(data);
  }
  printf("ok=%d truncated=%d corrupt=%d unsupported=%d nomem=%d badarg=%d toolarge=%d skipped=%d\n", counts[0],
         counts[1], counts[2], counts[3], counts[4], counts[5], counts[6], counts[7]);
  return 0;
}
