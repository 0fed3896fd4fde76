/* fuzz_image.c: libFuzzer harness for the image loader (runtime/lg_image.c,
 * lg_image_read: PNG through libpng, JPEG through libjpeg-turbo, every other
 * format refused). The input is the whole file; the channel count asked for is
 * the input size mod 5 (0 = as stored, 1..4 converted), so every seed stays a
 * valid image and all five conversions are reached as the fuzzer changes
 * lengths. The corpus keeps BMP/TGA/GIF/PNM/HDR seeds: they exercise the
 * refusal. A loaded image is checked against the channel count asked for and
 * read whole. */
#include "lgfuzz.h"
#include "lg_image.h"

static lgf_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  lgf_file_open(&file, "fuzz_image");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int channels = (int)(size % 5);
  lgf_begin_run();
  lgf_file_set(&file, data, size);
  lg_tensor *t = lg_image_read(file.path, channels);
  if (t) {
    if (t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > 4 ||
        (channels && t->shape[0] != channels)) {
      fprintf(stderr, "lgfuzz: lg_image_read(channels = %d) gave %d dims, %lld channels\n",
              channels, t->ndim, (long long)(t->ndim ? t->shape[0] : 0));
      abort();
    }
    lgf_touch(t);
    lgf_say_loaded("lg_image_read", t);
  } else {
    lgf_check_error("lg_image_read");
  }
  lg_release(t);
  lgf_end_run("lg_image_read");
  return 0;
}
