/*
 * A small strict JSON reader for the CNI plugin: validates a whole document (RFC 8259) and walks the
 * members of a top-level object, handing out each key (decoded) and the raw text of its value.
 * Nothing is allocated; every read is bounded by the end pointer.
 */
#ifndef CLUSTERMESH_CNI_JSON_H
#define CLUSTERMESH_CNI_JSON_H

#include <stddef.h>

struct json_span {
	const char *start;
	size_t len;
};

/* Called for each member of the top-level object; return non-zero to stop the walk. */
typedef int (*json_member_fn)(const char *key, struct json_span value, void *ctx);

/* 0 when text[0..len) is exactly one JSON object (surrounding whitespace allowed) and every member
 * was visited; -1 when it is not valid JSON, -2 when it is valid JSON but not an object, or the
 * callback's non-zero value. Keys longer than 255 bytes are passed truncated. */
int json_walk_object(const char *text, size_t len, json_member_fn fn, void *ctx);

/* Decodes a JSON string value (the span includes the quotes) into out (NUL-terminated, UTF-8).
 * -1 when the span is not a string or it does not fit in out_size (including the NUL). */
int json_string(struct json_span value, char *out, size_t out_size);

/* Writes s as a JSON string (with quotes) into out; returns the length, or -1 when it does not fit. */
int json_quote(const char *s, char *out, size_t out_size);

#endif
