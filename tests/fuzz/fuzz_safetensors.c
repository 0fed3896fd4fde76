/* fuzz_safetensors.c: libFuzzer harness for the safetensors reader
 * (runtime/lg_safetensors.c, lg_st_read). The input is the whole file.
 * Covers: the 8-byte header length against the file size and the cap, the
 * UTF-8 check, the JSON parser (strings with escapes and surrogates, numbers,
 * nesting), __metadata__, dtype/shape/data_offsets validation, the
 * overlap/gap checks and the tensor reads. A file that loads is walked whole
 * (every name, metadata pair and element) so that a short buffer is caught. */
#include "lgfuzz.h"
#include "lg_safetensors.h"

static lgf_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  lgf_file_open(&file, "fuzz_safetensors");
  return 0;
}

static void walk(const lg_st *st)
{
  static volatile size_t sink __attribute__((unused));
  size_t len = 0;
  for (int i = 0; i < st->n; i++) {
    len += strlen(st->names[i]);
    lgf_touch(st->tensors[i]);
  }
  for (int i = 0; i < st->nmeta; i++) len += strlen(st->keys[i]) + strlen(st->vals[i]);
  sink = len;
  char msg[80];
  snprintf(msg, sizeof msg, "loaded %d tensors, %d metadata pairs", st->n, st->nmeta);
  lgf_say("lg_st_read", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  lgf_begin_run();
  lgf_file_set(&file, data, size);
  lg_st *st = lg_st_read(file.path);
  if (st) walk(st);
  else lgf_check_error("lg_st_read");
  lg_st_free(st);
  lgf_end_run("lg_st_read");
  return 0;
}
