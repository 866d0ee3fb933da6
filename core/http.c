/* A small HTTPS/1.1 client over mbedTLS: verified TLS, deadlines on every wait, bounded responses. */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "util.h"

struct ni_http {
	struct ni_http_opts o;
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} addr;
	socklen_t addr_len;
	int family;
	char host_header[80];
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt ca;
	mbedtls_ssl_config conf;
};

/* The socket and the request's deadline, for mbedTLS's send and receive callbacks. */
struct io {
	int fd;
	int64_t deadline_ms;
	bool timed_out;
	int err; /* errno of a failed send or recv */
};

int ni_http_new(const struct ni_http_opts *o, struct ni_http **ret)
{
	struct ni_http *h;
	static const char pers[] = "nodeinit-http";

	if (!o->host || !o->verify_name || !o->ca_pem || o->port == 0 || o->port > 65535)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->o = *o;
	if (inet_pton(AF_INET, o->host, &h->addr.v4.sin_addr) == 1) {
		h->family = AF_INET;
		h->addr.v4.sin_family = AF_INET;
		h->addr.v4.sin_port = htons((uint16_t)o->port);
		h->addr_len = sizeof(h->addr.v4);
		snprintf(h->host_header, sizeof(h->host_header), "%s:%u", o->host, o->port);
	} else if (inet_pton(AF_INET6, o->host, &h->addr.v6.sin6_addr) == 1) {
		h->family = AF_INET6;
		h->addr.v6.sin6_family = AF_INET6;
		h->addr.v6.sin6_port = htons((uint16_t)o->port);
		h->addr_len = sizeof(h->addr.v6);
		snprintf(h->host_header, sizeof(h->host_header), "[%s]:%u", o->host, o->port);
	} else {
		free(h);
		return -EINVAL;
	}
	mbedtls_entropy_init(&h->entropy);
	mbedtls_ctr_drbg_init(&h->drbg);
	mbedtls_x509_crt_init(&h->ca);
	mbedtls_ssl_config_init(&h->conf);
	/* The PEM parser wants the terminating NUL counted. Any certificate that fails to parse is an error:
	 * a partly read bundle would verify against less than the operator gave. */
	if (mbedtls_ctr_drbg_seed(&h->drbg, mbedtls_entropy_func, &h->entropy, (const unsigned char *)pers,
				  sizeof(pers) - 1) != 0 ||
	    mbedtls_x509_crt_parse(&h->ca, (const unsigned char *)o->ca_pem, strlen(o->ca_pem) + 1) != 0 ||
	    mbedtls_ssl_config_defaults(&h->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
		ni_http_free(h);
		return -EINVAL;
	}
	/* Always verified against the CA; there is no option to turn this off. */
	mbedtls_ssl_conf_authmode(&h->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&h->conf, &h->ca, NULL);
	mbedtls_ssl_conf_rng(&h->conf, mbedtls_ctr_drbg_random, &h->drbg);
	*ret = h;
	return 0;
}

void ni_http_free(struct ni_http *h)
{
	if (!h)
		return;
	mbedtls_ssl_config_free(&h->conf);
	mbedtls_x509_crt_free(&h->ca);
	mbedtls_ctr_drbg_free(&h->drbg);
	mbedtls_entropy_free(&h->entropy);
	free(h);
}

void ni_http_response_free(struct ni_http_response *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

void ni_http_verify_info(uint32_t flags, char *buf, size_t n)
{
	int len = mbedtls_x509_crt_verify_info(buf, n, "", flags);

	/* One line: the library ends each reason with a newline. */
	for (int i = 0; i < len; i++)
		if (buf[i] == '\n')
			buf[i] = i + 1 < len ? ';' : '\0';
	if (len <= 0 && n)
		snprintf(buf, n, "unknown reason");
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline_ms - ni_now_ms();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* One send (out) or recv on the non-blocking socket, waiting for it within the deadline: mbedTLS's
 * answer (bytes, 0 at the peer's end of a recv, or its error code; io->err says which errno). */
static int io_xfer(struct io *io, bool out, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = out ? send(io->fd, buf, len, MSG_NOSIGNAL) : recv(io->fd, buf, len, 0);
		int w;

		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			io->err = errno;
			return out ? MBEDTLS_ERR_NET_SEND_FAILED : MBEDTLS_ERR_NET_RECV_FAILED;
		}
		w = wait_fd(io->fd, out ? POLLOUT : POLLIN, io->deadline_ms);
		if (w == 0)
			io->timed_out = true;
		if (w <= 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
	}
}

static int io_send(void *ctx, const unsigned char *buf, size_t len)
{
	return io_xfer(ctx, true, (void *)buf, len); /* send only reads it */
}

static int io_recv(void *ctx, unsigned char *buf, size_t len)
{
	return io_xfer(ctx, false, buf, len);
}

/*
 * A socket in the wanted network namespace: a socket keeps the namespace it was made in, so after
 * joining the host's network namespace, API sockets still come from the pod's (the host's may have
 * no route to the cluster IP). setns there, socket(), setns back to where this thread was.
 */
static int make_socket(struct ni_http *h)
{
	_cleanup_close_ int cur = -1;
	int fd, r = 0;

	if (h->o.netns_fd < 0) {
		fd = socket(h->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	cur = openat(h->o.self_proc_fd, "thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	if (setns(h->o.netns_fd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(h->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		r = -errno;
	if (setns(cur, CLONE_NEWNET) < 0) {
		/* Cannot happen short of a kernel bug (we were just there); never go on in the wrong one. */
		r = -errno;
		ni_safe_close(fd);
		abort();
	}
	return r < 0 ? r : fd;
}

static int connect_to(struct ni_http *h, int64_t deadline_ms, int *ret_fd)
{
	_cleanup_close_ int fd = make_socket(h);
	int err = 0, w;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return fd;
	if (connect(fd, (const struct sockaddr *)&h->addr, h->addr_len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		w = wait_fd(fd, POLLOUT, deadline_ms);
		if (w <= 0)
			return w == 0 ? -ETIMEDOUT : w;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		if (err)
			return -err;
	}
	*ret_fd = steal_fd(&fd);
	return 0;
}

static int tls_error(const struct io *io, int r)
{
	if (io->timed_out || r == MBEDTLS_ERR_SSL_TIMEOUT)
		return -ETIMEDOUT;
	if (io->err)
		return -io->err;
	return -EPROTO;
}

/* Header value of name (case-insensitive) in the header block [p, end), or NULL; *ret_len its length. */
static const char *header(const char *p, const char *end, const char *name, size_t *ret_len)
{
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*ret_len = (size_t)(eol - v);
			while (*ret_len && (v[*ret_len - 1] == ' ' || v[*ret_len - 1] == '\t'))
				(*ret_len)--;
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

/* Decodes a chunked body into out: 0 done, -EAGAIN incomplete, -EPROTO malformed. */
static int dechunk(const char *p, const char *end, struct ni_buf *out)
{
	for (;;) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		unsigned long long size = 0;
		const char *q;

		if (!eol)
			return -EAGAIN;
		for (q = p; q < eol && *q != ';'; q++) {
			int d = (*q >= '0' && *q <= '9') ? *q - '0' : (*q | 0x20) >= 'a' && (*q | 0x20) <= 'f' ? (*q | 0x20) - 'a' + 10 : -1;
			if (d < 0 || size > (1ULL << 40))
				return -EPROTO;
			size = size * 16 + (unsigned)d;
		}
		if (q == p)
			return -EPROTO;
		p = eol + 2;
		if (size == 0)
			return 0; /* trailers, if any, are not needed */
		if ((unsigned long long)(end - p) < size + 2)
			return -EAGAIN;
		if (p[size] != '\r' || p[size + 1] != '\n')
			return -EPROTO;
		if (ni_buf_put(out, p, size) < 0)
			return out->err;
		p += size + 2;
	}
}

/* The parser; with at_eof false, -EAGAIN means "read more". */
static int parse(const char *buf, size_t len, bool at_eof, int *ret_status, char **ret_body, size_t *ret_len)
{
	const char *end = buf + len, *hdr_end, *eol, *v;
	struct ni_buf body = NI_BUF_INIT(0);
	size_t vlen;
	int status, r;

	hdr_end = memmem(buf, len, "\r\n\r\n", 4);
	if (!hdr_end)
		return at_eof ? -EPROTO : -EAGAIN;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return -EPROTO;
	for (int i = 9; i < 12; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return -EPROTO;
	status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	eol = memmem(buf, len, "\r\n", 2);
	if ((v = header(eol + 2, hdr_end + 2, "Transfer-Encoding", &vlen)) && vlen == 7 && strncasecmp(v, "chunked", 7) == 0) {
		r = dechunk(hdr_end + 4, end, &body);
		if (r == -EAGAIN && at_eof)
			r = -EPROTO;
	} else if ((v = header(eol + 2, hdr_end + 2, "Content-Length", &vlen))) {
		char num[24];
		int64_t cl;

		if (vlen == 0 || vlen >= sizeof(num))
			return -EPROTO;
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		if (ni_parse_i64(num, 0, INT64_MAX, &cl) < 0)
			return -EPROTO;
		if ((uint64_t)(end - (hdr_end + 4)) < (uint64_t)cl)
			r = at_eof ? -EPROTO : -EAGAIN;
		else
			r = ni_buf_put(&body, hdr_end + 4, (size_t)cl);
	} else {
		/* Neither: the body runs to the end of the connection. */
		r = at_eof ? ni_buf_put(&body, hdr_end + 4, (size_t)(end - (hdr_end + 4))) : -EAGAIN;
	}
	if (r < 0) {
		ni_buf_free(&body);
		return r;
	}
	*ret_status = status;
	*ret_len = body.len;
	*ret_body = body.len ? ni_buf_steal(&body, ret_len) : NULL;
	ni_buf_free(&body);
	if (*ret_len && !*ret_body)
		return -ENOMEM;
	return 0;
}

int ni_http_parse(const char *buf, size_t len, int *ret_status, char **ret_body, size_t *ret_body_len)
{
	return parse(buf, len, true, ret_status, ret_body, ret_body_len);
}

static int build_request(struct ni_http *h, const struct ni_http_request *rq, struct ni_buf *b)
{
	ni_buf_puts(b, rq->method);
	ni_buf_putc(b, ' ');
	ni_buf_puts(b, rq->path);
	ni_buf_puts(b, " HTTP/1.1\r\nHost: ");
	ni_buf_puts(b, h->host_header);
	ni_buf_puts(b, "\r\nUser-Agent: ");
	ni_buf_puts(b, h->o.user_agent ? h->o.user_agent : "nodeinit");
	ni_buf_puts(b, "\r\nAccept: application/json\r\nConnection: close\r\n");
	if (rq->bearer) {
		ni_buf_puts(b, "Authorization: Bearer ");
		ni_buf_puts(b, rq->bearer);
		ni_buf_puts(b, "\r\n");
	}
	if (rq->content_type) {
		ni_buf_puts(b, "Content-Type: ");
		ni_buf_puts(b, rq->content_type);
		ni_buf_puts(b, "\r\n");
	}
	if (rq->body || rq->content_type) {
		ni_buf_puts(b, "Content-Length: ");
		ni_buf_put_i64(b, (int64_t)rq->body_len);
		ni_buf_puts(b, "\r\n");
	}
	ni_buf_puts(b, "\r\n");
	if (rq->body_len)
		ni_buf_put(b, rq->body, rq->body_len);
	return b->err;
}

int ni_http_do(struct ni_http *h, const struct ni_http_request *rq, struct ni_http_response *ret)
{
	struct io io = { .fd = -1, .deadline_ms = ni_now_ms() + h->o.timeout_ms };
	struct ni_buf req = NI_BUF_INIT(0), resp = NI_BUF_INIT(h->o.max_response);
	mbedtls_ssl_context ssl;
	size_t off = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	mbedtls_ssl_init(&ssl);
	r = build_request(h, rq, &req);
	if (r < 0)
		goto out;
	r = connect_to(h, io.deadline_ms, &io.fd);
	if (r < 0)
		goto out;
	/* mbedTLS 2.28 matches the name only against DNS SANs and the CN, so the certificate is checked
	 * for this name (kube-apiserver's serving certificate always carries kubernetes.default.svc). */
	if (mbedtls_ssl_setup(&ssl, &h->conf) != 0 || mbedtls_ssl_set_hostname(&ssl, h->o.verify_name) != 0) {
		r = -ENOMEM;
		goto out;
	}
	mbedtls_ssl_set_bio(&ssl, &io, io_send, io_recv, NULL);
	while ((r = mbedtls_ssl_handshake(&ssl)) != 0) {
		if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
			ret->verify_flags = mbedtls_ssl_get_verify_result(&ssl);
			r = -EKEYREJECTED;
			goto out;
		}
		if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
			r = tls_error(&io, r);
			goto out;
		}
	}
	while (off < req.len) {
		r = mbedtls_ssl_write(&ssl, (const unsigned char *)req.p + off, req.len - off);
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (r < 0) {
			r = tls_error(&io, r);
			goto out;
		}
		off += (size_t)r;
	}
	for (;;) {
		unsigned char chunk[4096];
		bool eof = false;

		r = mbedtls_ssl_read(&ssl, chunk, sizeof(chunk));
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF)
			eof = true;
		else if (r < 0) {
			r = tls_error(&io, r);
			goto out;
		} else if (ni_buf_put(&resp, chunk, (size_t)r) < 0) {
			r = resp.err == -E2BIG ? -EFBIG : resp.err;
			goto out;
		}
		r = parse(resp.p ? resp.p : "", resp.len, eof, &ret->status, &ret->body, &ret->body_len);
		if (r != -EAGAIN)
			break;
	}
	if (r == 0)
		mbedtls_ssl_close_notify(&ssl);
out:
	mbedtls_ssl_free(&ssl);
	ni_safe_close(io.fd);
	if (req.p)
		explicit_bzero(req.p, req.len); /* it holds the token */
	ni_buf_free(&req);
	ni_buf_free(&resp);
	return r;
}
