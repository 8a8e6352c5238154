/* codecs/ip1_legacy.c - placeholder until the codec lands. */
#include "codecs/codec.h"

const struct codec codec_ip1_legacy = {
    .name = "ip1-legacy",
};
