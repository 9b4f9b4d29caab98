/*
 * The clustermesh CNI plugin (CNI spec 1.1: ADD, DEL, CHECK, STATUS, GC, VERSION), a small static
 * binary so it runs on any node. It checks what the runtime passes (environment + the network
 * configuration on stdin), forwards the request to the node's agent over its unix socket
 * (POST /v1/cni/<command>, the body described in lib/api/cni-protocol.ts), and prints the agent's
 * result or a CNI error (https://github.com/containernetworking/cni/blob/main/SPEC.md#error).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "json.h"

#define CNI_VERSION "1.1.0"
#define DEFAULT_AGENT_SOCKET "/var/run/clustermesh/agent.sock"
#define MAX_CONFIG (1 << 20)
#define MAX_REPLY (4 << 20)
#define AGENT_TIMEOUT_SECONDS 60

enum cni_code {
	INCOMPATIBLE_VERSION = 1,
	INVALID_ENVIRONMENT = 4,
	IO_FAILURE = 5,
	DECODE_FAILURE = 6,
	INVALID_NETWORK_CONFIG = 7,
	TRY_AGAIN_LATER = 11,
};

static const char *const supported_versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
static const char *const commands[] = {"ADD", "DEL", "CHECK", "STATUS", "VERSION", "GC"};

/* The cniVersion errors and results are printed with: the configuration's once it is known. */
static char result_version[32] = CNI_VERSION;

static void print_quoted(const char *s)
{
	static char quoted[16384];
	if (json_quote(s, quoted, sizeof quoted) < 0)
		json_quote("(too long to print)", quoted, sizeof quoted);
	fputs(quoted, stdout);
}

/* Prints a CNI error to stdout (where the runtime reads it) and exits 1. */
static void fail(int code, const char *details, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("{\"cniVersion\":");
	print_quoted(result_version);
	printf(",\"code\":%d,\"msg\":", code);
	print_quoted(msg);
	if (details && *details) {
		printf(",\"details\":");
		print_quoted(details);
	}
	printf("}\n");
	exit(1);
}

static char *read_all(int fd, size_t limit, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap >= limit) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			char *grown = realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				return NULL;
			}
			buf = grown;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

struct network_config {
	char cni_version[32];
	char name[256];
	char type[256];
	char agent_socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int has_cni_version, has_name, has_type;
	const char *bad_field; /* the first field with a wrong type or value */
	const char *bad_reason;
};

static int is_json_string(struct json_span v)
{
	return v.len >= 2 && v.start[0] == '"';
}

static int read_config_member(const char *key, struct json_span value, void *ctx)
{
	struct network_config *c = ctx;
	struct {
		const char *key;
		char *out;
		size_t size;
		int *seen;
	} strings[] = {
		{"cniVersion", c->cni_version, sizeof c->cni_version, &c->has_cni_version},
		{"name", c->name, sizeof c->name, &c->has_name},
		{"type", c->type, sizeof c->type, &c->has_type},
	};
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		if (strcmp(key, strings[i].key) != 0)
			continue;
		*strings[i].seen = is_json_string(value) && json_string(value, strings[i].out, strings[i].size) == 0 &&
				   strings[i].out[0] != '\0';
		return 0;
	}
	if (strcmp(key, "agentSocket") == 0) {
		if (!is_json_string(value) || json_string(value, c->agent_socket, sizeof c->agent_socket) < 0 ||
		    c->agent_socket[0] == '\0') {
			if (!c->bad_field) {
				c->bad_field = "agentSocket";
				c->bad_reason = "must be a string (a unix socket path shorter than 108 bytes)";
			}
		}
		return 0;
	}
	if (strcmp(key, "mtu") == 0) {
		char digits[16];
		long mtu = -1;
		if (value.len > 0 && value.len < sizeof digits) {
			char *end;
			memcpy(digits, value.start, value.len);
			digits[value.len] = '\0';
			mtu = strtol(digits, &end, 10);
			if (*end != '\0')
				mtu = -1;
		}
		if (mtu < 576 && !c->bad_field) {
			c->bad_field = "mtu";
			c->bad_reason = "must be an integer >= 576";
		}
	}
	return 0;
}

static void parse_config(const char *text, size_t len, struct network_config *c)
{
	memset(c, 0, sizeof *c);
	int rc = json_walk_object(text, len, read_config_member, c);
	if (rc == -1)
		fail(DECODE_FAILURE, NULL, "network configuration on stdin is not JSON");
	if (rc == -2)
		fail(DECODE_FAILURE, NULL, "network configuration on stdin must be a JSON object");
	if (!c->has_cni_version)
		fail(INVALID_NETWORK_CONFIG, NULL, "network configuration: \"cniVersion\" is required (a string)");
	int supported = 0;
	for (size_t i = 0; i < sizeof supported_versions / sizeof supported_versions[0]; i++)
		supported |= strcmp(c->cni_version, supported_versions[i]) == 0;
	if (!supported)
		fail(INCOMPATIBLE_VERSION, "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
		     "network configuration: cniVersion \"%s\" is not supported", c->cni_version);
	strcpy(result_version, c->cni_version);
	if (!c->has_name)
		fail(INVALID_NETWORK_CONFIG, NULL, "network configuration: \"name\" is required (a string)");
	if (!c->has_type)
		fail(INVALID_NETWORK_CONFIG, NULL, "network configuration: \"type\" is required (a string)");
	if (c->bad_field)
		fail(INVALID_NETWORK_CONFIG, NULL, "network configuration: \"%s\" %s", c->bad_field, c->bad_reason);
	if (!c->agent_socket[0])
		strcpy(c->agent_socket, DEFAULT_AGENT_SOCKET);
}

static const char *required_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail(INVALID_ENVIRONMENT, NULL, "%s is not set", name);
	return v;
}

static void check_container_id(const char *id)
{
	for (const char *p = id; *p; p++) {
		char c = *p;
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (p == id || (c != '_' && c != '.' && c != '-')))
			fail(INVALID_ENVIRONMENT, NULL, "CNI_CONTAINERID: \"%s\" has invalid characters", id);
	}
}

static void check_ifname(const char *ifname)
{
	int bad = strlen(ifname) > 15 || strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0;
	for (const char *p = ifname; *p; p++)
		bad |= *p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r');
	if (bad)
		fail(INVALID_ENVIRONMENT, NULL, "CNI_IFNAME: \"%s\" is not a valid interface name", ifname);
}

struct buffer {
	char *data;
	size_t len, cap;
};

static void append(struct buffer *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *grown = realloc(b->data, cap);
		if (!grown)
			fail(IO_FAILURE, NULL, "out of memory");
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void append_str(struct buffer *b, const char *s)
{
	append(b, s, strlen(s));
}

static void append_quoted(struct buffer *b, const char *s)
{
	size_t size = strlen(s) * 6 + 3;
	char *quoted = malloc(size);
	if (!quoted || json_quote(s, quoted, size) < 0)
		fail(IO_FAILURE, NULL, "out of memory");
	append_str(b, quoted);
	free(quoted);
}

/* CNI_ARGS "K=V;K=V" as a JSON object. */
static void append_cni_args(struct buffer *b, const char *text)
{
	char *copy = strdup(text ? text : "");
	int first = 1;
	append_str(b, "{");
	for (char *save = NULL, *pair = strtok_r(copy, ";", &save); pair; pair = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(pair, '=');
		if (!eq || eq == pair)
			fail(INVALID_ENVIRONMENT, NULL, "CNI_ARGS: \"%s\" is not KEY=VALUE", pair);
		*eq = '\0';
		if (!first)
			append_str(b, ",");
		append_quoted(b, pair);
		append_str(b, ":");
		append_quoted(b, eq + 1);
		first = 0;
	}
	append_str(b, "}");
	free(copy);
}

struct agent_reply {
	int status;
	const char *body;
	size_t body_len;
};

/* 0 with the reply; -1 when the agent cannot be reached (errno set), -2 on a broken exchange. */
static int call_agent(const char *socket_path, const char *command_lower, const struct buffer *body,
		      struct agent_reply *reply, char *why, size_t why_size)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval timeout = {.tv_sec = AGENT_TIMEOUT_SECONDS};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	strncpy(addr.sun_path, socket_path, sizeof addr.sun_path - 1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	/* HTTP/1.0: the agent answers with the body up to the connection's close, never chunked. */
	char head[256];
	int head_len = snprintf(head, sizeof head,
				"POST /v1/cni/%s HTTP/1.0\r\nHost: agent\r\nContent-Type: application/json\r\n"
				"Content-Length: %zu\r\n\r\n",
				command_lower, body->len);
	struct buffer request = {0};
	append(&request, head, (size_t)head_len);
	append(&request, body->data, body->len);
	for (size_t sent = 0; sent < request.len;) {
		ssize_t w = send(fd, request.data + sent, request.len - sent, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(why, why_size, "sending the request: %s", strerror(errno));
			close(fd);
			return -2;
		}
		sent += (size_t)w;
	}
	free(request.data);
	size_t len;
	char *raw = read_all(fd, MAX_REPLY, &len);
	int read_errno = errno;
	close(fd);
	if (!raw) {
		snprintf(why, why_size, "%s", read_errno == EAGAIN || read_errno == EWOULDBLOCK
						      ? "no answer within 60 s"
						      : strerror(read_errno));
		return -2;
	}
	char *header_end = strstr(raw, "\r\n\r\n");
	if (strncmp(raw, "HTTP/1.", 7) != 0 || strlen(raw) < 12 || !header_end) {
		snprintf(why, why_size, "the reply is not HTTP");
		return -2;
	}
	reply->status = atoi(raw + 9);
	reply->body = header_end + 4;
	reply->body_len = len - (size_t)(reply->body - raw);
	return 0;
}

struct error_body {
	int code;
	char msg[4096];
	char details[4096];
};

static int read_error_member(const char *key, struct json_span value, void *ctx)
{
	struct error_body *e = ctx;
	if (strcmp(key, "code") == 0) {
		char digits[16];
		if (value.len < sizeof digits) {
			memcpy(digits, value.start, value.len);
			digits[value.len] = '\0';
			e->code = atoi(digits);
		}
	} else if (strcmp(key, "msg") == 0 && is_json_string(value)) {
		json_string(value, e->msg, sizeof e->msg);
	} else if (strcmp(key, "details") == 0 && is_json_string(value)) {
		json_string(value, e->details, sizeof e->details);
	}
	return 0;
}

static int skip_member(const char *key, struct json_span value, void *ctx)
{
	(void)key;
	(void)value;
	(void)ctx;
	return 0;
}

/* Prints the agent's ADD result with the configuration's cniVersion, members otherwise as sent. */
static int print_result_member(const char *key, struct json_span value, void *ctx)
{
	(void)ctx;
	if (strcmp(key, "cniVersion") == 0)
		return 0;
	putchar(',');
	print_quoted(key);
	putchar(':');
	fwrite(value.start, 1, value.len, stdout);
	return 0;
}

int main(void)
{
	const char *command = getenv("CNI_COMMAND");
	int known = 0;
	if (!command || !*command)
		fail(INVALID_ENVIRONMENT, NULL, "CNI_COMMAND is not set");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		known |= strcmp(command, commands[i]) == 0;
	if (!known)
		fail(INVALID_ENVIRONMENT, "ADD, DEL, CHECK, STATUS, VERSION, GC", "CNI_COMMAND: unknown command \"%s\"",
		     command);
	if (strcmp(command, "VERSION") == 0) {
		printf("{\"cniVersion\":\"%s\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n",
		       CNI_VERSION);
		return 0;
	}

	size_t config_len = 0;
	char *config_text = read_all(0, MAX_CONFIG, &config_len);
	if (!config_text)
		fail(IO_FAILURE, NULL, "reading the network configuration from stdin: %s", strerror(errno));
	struct network_config config;
	parse_config(config_text, config_len, &config);

	int per_container = strcmp(command, "STATUS") != 0 && strcmp(command, "GC") != 0;
	const char *container_id = "", *ifname = "", *netns = "", *cni_args = "";
	if (per_container) {
		container_id = required_env("CNI_CONTAINERID");
		check_container_id(container_id);
		ifname = required_env("CNI_IFNAME");
		check_ifname(ifname);
		netns = strcmp(command, "ADD") == 0 ? required_env("CNI_NETNS") : getenv("CNI_NETNS");
		netns = netns ? netns : "";
		cni_args = getenv("CNI_ARGS");
	}

	struct buffer body = {0};
	append_str(&body, "{\"command\":");
	append_quoted(&body, command);
	append_str(&body, ",\"containerId\":");
	append_quoted(&body, container_id);
	append_str(&body, ",\"netns\":");
	append_quoted(&body, netns);
	append_str(&body, ",\"ifname\":");
	append_quoted(&body, ifname);
	append_str(&body, ",\"args\":");
	append_cni_args(&body, cni_args);
	append_str(&body, ",\"config\":");
	append(&body, config_text, config_len);
	append_str(&body, "}");

	char command_lower[8] = {0};
	for (size_t i = 0; command[i] && i < sizeof command_lower - 1; i++)
		command_lower[i] = (char)(command[i] | 0x20);
	int is_del = strcmp(command, "DEL") == 0;
	struct agent_reply reply;
	char why[512] = "";
	int rc = call_agent(config.agent_socket, command_lower, &body, &reply, why, sizeof why);
	if (rc == -1) {
		if (errno == ENOENT || errno == ECONNREFUSED) {
			/* A DEL must not fail forever while the agent is down: the restarted agent removes
			 * endpoints whose pods are gone when it resyncs, so the IP is released then. */
			if (is_del)
				return 0;
			fail(TRY_AGAIN_LATER, NULL, "the clustermesh agent is not running (no socket at %s)",
			     config.agent_socket);
		}
		fail(IO_FAILURE, NULL, "agent at %s: %s", config.agent_socket, strerror(errno));
	}
	if (rc == -2)
		fail(IO_FAILURE, NULL, "agent at %s: %s", config.agent_socket, why);

	if (reply.status == 200) {
		if (strcmp(command, "ADD") != 0)
			return 0;
		if (json_walk_object(reply.body, reply.body_len, skip_member, NULL) != 0)
			fail(IO_FAILURE, NULL, "agent at %s sent a result that is not a JSON object", config.agent_socket);
		printf("{\"cniVersion\":");
		print_quoted(result_version);
		json_walk_object(reply.body, reply.body_len, print_result_member, NULL);
		printf("}\n");
		return 0;
	}
	struct error_body error = {.code = IO_FAILURE};
	if (json_walk_object(reply.body, reply.body_len, read_error_member, &error) != 0 || !error.msg[0])
		snprintf(error.msg, sizeof error.msg, "agent answered HTTP %d", reply.status);
	if (is_del && error.code == TRY_AGAIN_LATER)
		return 0;
	fail(error.code, error.details, "%s", error.msg);
}
