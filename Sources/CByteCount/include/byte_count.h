#pragma once
#include <stddef.h>

/// How many bytes of `bytes[0..<length]` equal `value`. A plain loop the C compiler vectorizes
/// (16 or 32 bytes a step); Swift's own loops over bytes did not vectorize.
size_t batchform_count_byte(const void *bytes, size_t length, unsigned char value);
