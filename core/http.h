/* A small HTTPS/1.1 client over mbedTLS for the Kubernetes API: one connection a request, verified, bounded. */
#ifndef NI_HTTP_H
#define NI_HTTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Errors (all -errno): -ETIMEDOUT the deadline passed; connect's own errors (-ECONNREFUSED,
 * -ENETUNREACH, ...); -EKEYREJECTED the server certificate did not verify (ret->verify_flags says
 * why); -EPROTO any other TLS failure or a response that is not HTTP/1.x; -EFBIG the response is
 * larger than max_response; -EINVAL bad options (a host that is not an IP literal, an unusable CA).
 */

struct ni_http_opts {
	const char *host;         /* an IPv4 or IPv6 literal (KUBERNETES_SERVICE_HOST) */
	unsigned port;
	const char *verify_name;  /* the DNS name the server certificate must carry */
	const char *ca_pem;       /* the trusted CA bundle, PEM, NUL-terminated */
	int netns_fd;             /* sockets are made in this network namespace; -1: the current one */
	int self_proc_fd;         /* a /proc showing this process, to find the current netns again */
	int timeout_ms;           /* for the whole request: connect, handshake, write, read */
	size_t max_response;      /* bytes, headers included */
	const char *user_agent;
};

struct ni_http_request {
	const char *method;       /* GET, POST, PATCH */
	const char *path;         /* starts with '/' */
	const char *bearer;       /* the token, or NULL */
	const char *content_type; /* for a body; NULL without one */
	const char *body;
	size_t body_len;
};

struct ni_http_response {
	int status;
	char *body;               /* malloc'd, NUL-terminated (not counted in body_len); NULL when empty */
	size_t body_len;
	uint32_t verify_flags;    /* MBEDTLS_X509_BADCERT_* after -EKEYREJECTED */
};

struct ni_http;

int ni_http_new(const struct ni_http_opts *o, struct ni_http **ret);
void ni_http_free(struct ni_http *h);

/* One request on a fresh connection ("Connection: close"). On 0, *ret holds any HTTP status. */
int ni_http_do(struct ni_http *h, const struct ni_http_request *rq, struct ni_http_response *ret);
void ni_http_response_free(struct ni_http_response *r);

/* Parses a complete HTTP/1.x response (Content-Length, chunked, or up to the end): the pure part. */
int ni_http_parse(const char *buf, size_t len, int *ret_status, char **ret_body, size_t *ret_body_len);

/* The certificate problems in verify_flags as one line ("the certificate is not correctly signed..."). */
void ni_http_verify_info(uint32_t flags, char *buf, size_t n);

#endif
