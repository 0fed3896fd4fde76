/* stb_image_impl.c: Debian's stb_image (the header libstb.so is built from),
 * compiled into the image fuzzer so that its decoders run under ASan/UBSan
 * with coverage. The fuzzer's own definitions take precedence over the
 * uninstrumented copies in libstb.so, which still provides stb_image_write. */
#define STB_IMAGE_IMPLEMENTATION
#include "stb_image.h"
