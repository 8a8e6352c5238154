/* tests/codecs/test_jojka.c - the Jojka codec against its golden cases
 * (tests/codecs/fixtures/jojka/, built from seed 003's own examples) and
 * the few rules a case directory cannot show. */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "codecs/codec.h"
#include "tests/codecs/fixture_runner.h"

Test(jojka, fixtures)
{
    int failed = fixture_run_provider("jojka");
    cr_assert(eq(int, failed, 0), "see the FAIL lines above");
}

Test(jojka, table)
{
    cr_expect(eq(sz, codec_jojka.send_max_recipients, 1));
    cr_expect(eq(sz, codec_jojka.campaign_max_recipients, 1000));
    cr_expect(codec_jojka.polls);
    cr_expect(not(codec_jojka.has_callbacks));
    cr_expect(codec_find("jojka") == &codec_jojka);
}
