/* codecs/registry.c - the table of codecs, by the accounts file's name. */
#include "codecs/codec.h"

#include <string.h>

static const struct codec *const codecs[] = {
    &codec_intime,
    &codec_ip1,
    &codec_ip1_legacy,
    &codec_jojka,
};

const struct codec *codec_find(const char *name)
{
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        if (strcmp(codecs[i]->name, name) == 0)
            return codecs[i];
    return NULL;
}
