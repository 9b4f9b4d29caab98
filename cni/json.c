#include "json.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hex_value(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

/* p at the opening quote; returns the position after the closing quote, or NULL. */
static const char *scan_string(const char *p, const char *end)
{
	if (p >= end || *p != '"')
		return NULL;
	p++;
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (p >= end)
				return NULL;
			if (*p == 'u') {
				unsigned cp;
				if (read_hex4(p + 1, end, &cp) < 0)
					return NULL;
				p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", *p))
				return NULL;
		}
		p++;
	}
	return NULL;
}

static const char *scan_number(const char *p, const char *end)
{
	const char *start;
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		start = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		start = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	return p;
}

static const char *scan_value(const char *p, const char *end, int depth);

static const char *scan_container(const char *p, const char *end, int depth)
{
	char close = *p == '{' ? '}' : ']';
	int object = *p == '{';
	if (depth > MAX_DEPTH)
		return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (object) {
			p = scan_string(p, end);
			if (!p)
				return NULL;
			p = skip_ws(p, end);
			if (p >= end || *p != ':')
				return NULL;
			p = skip_ws(p + 1, end);
		}
		p = scan_value(p, end, depth + 1);
		if (!p)
			return NULL;
		p = skip_ws(p, end);
		if (p >= end)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p != ',')
			return NULL;
		p = skip_ws(p + 1, end);
	}
}

static const char *scan_literal(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(end - p) < n || memcmp(p, word, n) != 0)
		return NULL;
	return p + n;
}

static const char *scan_value(const char *p, const char *end, int depth)
{
	if (p >= end)
		return NULL;
	switch (*p) {
	case '{':
	case '[':
		return scan_container(p, end, depth);
	case '"':
		return scan_string(p, end);
	case 't':
		return scan_literal(p, end, "true");
	case 'f':
		return scan_literal(p, end, "false");
	case 'n':
		return scan_literal(p, end, "null");
	default:
		return scan_number(p, end);
	}
}

int json_walk_object(const char *text, size_t len, json_member_fn fn, void *ctx)
{
	const char *end = text + len;
	const char *p = skip_ws(text, end);
	const char *after = scan_value(p, end, 0);
	if (!after || skip_ws(after, end) != end)
		return -1;
	if (*p != '{')
		return -2;
	p = skip_ws(p + 1, end);
	if (*p == '}')
		return 0;
	for (;;) {
		char key[256];
		struct json_span key_span, value;
		const char *key_end = scan_string(p, end);
		key_span.start = p;
		key_span.len = (size_t)(key_end - p);
		if (json_string(key_span, key, sizeof key) < 0) {
			/* too long for the buffer: pass it truncated (no member we read has such a name) */
			size_t n = key_span.len - 2 < sizeof key - 1 ? key_span.len - 2 : sizeof key - 1;
			memcpy(key, p + 1, n);
			key[n] = '\0';
		}
		p = skip_ws(skip_ws(key_end, end) + 1, end); /* past ':' */
		value.start = p;
		p = scan_value(p, end, 1);
		value.len = (size_t)(p - value.start);
		int stop = fn(key, value, ctx);
		if (stop)
			return stop;
		p = skip_ws(p, end);
		if (*p == '}')
			return 0;
		p = skip_ws(p + 1, end); /* past ',' */
	}
}

static int put_utf8(unsigned cp, char *out, size_t *n, size_t size)
{
	char buf[4];
	size_t k;
	if (cp < 0x80) {
		buf[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		buf[0] = (char)(0xc0 | cp >> 6);
		buf[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		buf[0] = (char)(0xe0 | cp >> 12);
		buf[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		buf[0] = (char)(0xf0 | cp >> 18);
		buf[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		buf[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		buf[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	if (*n + k >= size)
		return -1;
	memcpy(out + *n, buf, k);
	*n += k;
	return 0;
}

int json_string(struct json_span value, char *out, size_t out_size)
{
	const char *p = value.start, *end = value.start + value.len;
	size_t n = 0;
	if (value.len < 2 || *p != '"' || scan_string(p, end) != end)
		return -1;
	p++;
	end--; /* the closing quote */
	while (p < end) {
		char c = *p++;
		if (c != '\\') {
			if (n + 1 >= out_size)
				return -1;
			out[n++] = c;
			continue;
		}
		c = *p++;
		if (c == 'u') {
			unsigned cp, low;
			read_hex4(p, end, &cp);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
			    read_hex4(p + 2, end, &low) == 0 && low >= 0xdc00 && low < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
				p += 6;
			}
			if (cp == 0 || put_utf8(cp, out, &n, out_size) < 0)
				return -1;
			continue;
		}
		const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
		if (n + 1 >= out_size)
			return -1;
		out[n++] = to[strchr(from, c) - from];
	}
	out[n] = '\0';
	return 0;
}

int json_quote(const char *s, char *out, size_t out_size)
{
	size_t n = 0;
	if (out_size < 3)
		return -1;
	out[n++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t k;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			k = 2;
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			k = 6;
		} else {
			esc[0] = (char)c;
			k = 1;
		}
		if (n + k + 2 > out_size)
			return -1;
		memcpy(out + n, esc, k);
		n += k;
	}
	out[n++] = '"';
	out[n] = '\0';
	return (int)n;
}
