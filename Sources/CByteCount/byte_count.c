#include "byte_count.h"

size_t batchform_count_byte(const void *bytes, size_t length, unsigned char value) {
    const unsigned char *p = bytes;
    size_t count = 0;
    /* Blocks of 255 keep the per-lane byte counters the vectorizer uses from overflowing. */
    while (length > 0) {
        size_t block = length < 255 * 32 ? length : 255 * 32;
        unsigned int partial = 0;
        for (size_t i = 0; i < block; i++) partial += p[i] == value;
        count += partial;
        p += block;
        length -= block;
    }
    return count;
}
