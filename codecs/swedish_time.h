/* codecs/swedish_time.h - Swedish local time (Europe/Stockholm) without a
 * time zone database.
 *
 * InTime's senddate and iP.1 legacy's sendAt are Swedish wall-clock times.
 * Codecs are pure and may not read /usr/share/zoneinfo, so the offset is
 * computed from the EU rule Sweden has followed since 1996: CET (UTC+1),
 * CEST (UTC+2) from 01:00 UTC on the last Sunday of March to 01:00 UTC on
 * the last Sunday of October. Deterministic; valid for years 1970-9999. */
#ifndef CODECS_SWEDISH_TIME_H
#define CODECS_SWEDISH_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Returns the offset of Swedish local time from UTC at Unix time `utc`, in
 * seconds: 3600 (CET) or 7200 (CEST). */
int swedish_time_offset(int64_t utc);

/* Formats Unix time `utc` as Swedish local time "YYYY-MM-DDTHH:MM:SS"
 * (out needs 20 bytes). */
void swedish_time_format(char *out, size_t out_size, int64_t utc);

/* Reads a date-time "YYYY-MM-DDTHH:MM[:SS]" (a space may stand for the T),
 * optionally followed by "Z" or "+hh:mm"/"-hh:mm". With a zone it is
 * converted to Swedish local time; without one it is taken to be Swedish
 * local time already. Writes "YYYY-MM-DDTHH:MM:SS" to out (at least 20
 * bytes). Returns 0, or -1 with errstr set. */
int swedish_time_localise(char *out, size_t out_size, const char *in,
                          char *errstr, size_t errstr_size);

#endif /* CODECS_SWEDISH_TIME_H */
