/* Read-only zip archives held in memory (a mapped file): the central directory with
 * ZIP64 records, stored entries returned as pointers into the buffer, deflated entries
 * inflated with zlib. Every offset and size is checked against the buffer. */
#ifndef S2_ZIP_H
#define S2_ZIP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct s2_zip_entry {
    char *name;              /* NUL-terminated copy of the stored name */
    uint64_t comp_size;      /* bytes in the archive */
    uint64_t size;           /* bytes once extracted */
    uint64_t data_offset;    /* start of the (compressed) data in the buffer */
    uint32_t crc;
    uint16_t method;         /* 0 stored, 8 deflate */
} s2_zip_entry;

typedef struct s2_zip {
    const uint8_t *buf;      /* borrowed; must outlive the s2_zip */
    size_t len;
    const char *name;        /* borrowed; prefixes messages */
    s2_zip_entry *entries;   /* central directory order */
    int n;
    int *by_name;            /* entry indices sorted by name */
} s2_zip;

/* Reads the central directory and every local header. Fails with
 * "<name>: not a zip file ..." or "<name>: truncated zip ..." and friends. */
int s2_zip_open(s2_zip *z, const uint8_t *buf, size_t len, const char *name);
void s2_zip_close(s2_zip *z);
/* Index of the entry with this exact name, or -1. */
int s2_zip_find(const s2_zip *z, const char *name);
/* Entry bytes: stored entries point into the buffer (*owned = NULL); deflated ones are
 * inflated into *owned (caller free()s). check_crc verifies the CRC-32 of the result. */
int s2_zip_read(const s2_zip *z, int i, bool check_crc, const uint8_t **data, uint8_t **owned);
/* Inflates a deflated entry into dst (entry size bytes). */
int s2_zip_inflate(const s2_zip *z, int i, uint8_t *dst);

#endif
