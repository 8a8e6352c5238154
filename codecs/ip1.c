/* codecs/ip1.c - placeholder until the codec lands. */
#include "codecs/codec.h"

const struct codec codec_ip1 = {
    .name = "ip1",
};
