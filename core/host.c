/* Host facts: os-release, CPUs, memory, network interfaces, block devices, NUMA nodes. */
#define _GNU_SOURCE
#include "host.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>

#include "file.h"
#include "util.h"

#define VIRTUAL_MAX (64u << 10) /* /proc/meminfo is ~1.5 KiB, sysfs attributes one page at most */
#define HOST_LIST_MAX 4096      /* interfaces or block devices: more is not a host we understand */

/* A /proc or /sys file under root_fd, in one read(). */
static int read_virtual_at(int dir_fd, const char *path, char **ret)
{
	_cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t len;

	if (fd < 0)
		return -errno;
	return ni_read_virtual_fd(fd, VIRTUAL_MAX, ret, &len);
}

/* The first line of a sysfs attribute, without trailing blanks, into buf. */
static int read_attr(int dir_fd, const char *path, char *buf, size_t size)
{
	_cleanup_free_ char *s = NULL;
	size_t n;
	int r;

	r = read_virtual_at(dir_fd, path, &s);
	if (r < 0)
		return r;
	n = strcspn(s, "\n");
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= size)
		return -EFBIG;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

static int read_attr_u64(int dir_fd, const char *path, uint64_t *ret)
{
	char buf[32];
	int64_t v;
	int r;

	r = read_attr(dir_fd, path, buf, sizeof(buf));
	if (r < 0)
		return r;
	r = ni_parse_i64(buf, 0, INT64_MAX, &v);
	if (r < 0)
		return -EBADMSG;
	*ret = (uint64_t)v;
	return 0;
}

void ni_host_os_free(struct ni_host_os *os)
{
	free(os->id);
	free(os->version_id);
	free(os->pretty_name);
	*os = (struct ni_host_os){ 0 };
}

/* One os-release value (after '='), unquoted into a malloc'd string; -EBADMSG when a quote is open. */
static int os_release_value(const char *p, const char *end, char **ret)
{
	struct ni_buf b = NI_BUF_INIT(0);
	char quote = 0;

	for (; p < end; p++) {
		char c = *p;
		if (quote == '\'') {
			if (c == '\'')
				quote = 0;
			else
				ni_buf_putc(&b, c);
		} else if (quote == '"') {
			if (c == '"')
				quote = 0;
			else if (c == '\\' && p + 1 < end && strchr("\"\\$`", p[1]))
				ni_buf_putc(&b, *++p);
			else
				ni_buf_putc(&b, c);
		} else if (c == '\'' || c == '"') {
			quote = c;
		} else if (c == '\\' && p + 1 < end) {
			ni_buf_putc(&b, *++p);
		} else if (c == ' ' || c == '\t') {
			/* unquoted blanks end the value; only a comment or more blanks may follow */
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			if (p < end && *p != '#') {
				ni_buf_free(&b);
				return -EBADMSG;
			}
			break;
		} else {
			ni_buf_putc(&b, c);
		}
	}
	if (quote) {
		ni_buf_free(&b);
		return -EBADMSG;
	}
	if (b.err) {
		int r = b.err;
		ni_buf_free(&b);
		return r;
	}
	*ret = ni_buf_steal(&b, NULL);
	return *ret ? 0 : -ENOMEM;
}

int ni_host_parse_os_release(const char *text, struct ni_host_os *ret)
{
	struct ni_host_os os = { 0 };
	const char *line = text;
	int r = 0;

	while (*line) {
		const char *end = strchrnul(line, '\n'), *p = line, *eq;
		char **field = NULL;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end || *p == '#')
			goto next;
		eq = memchr(p, '=', (size_t)(end - p));
		if (!eq || eq == p) {
			r = -EBADMSG;
			break;
		}
		for (const char *k = p; k < eq; k++)
			if (!(isalnum((unsigned char)*k) || *k == '_')) {
				r = -EBADMSG;
				goto out;
			}
#define KEY_IS(s) ((size_t)(eq - p) == strlen(s) && memcmp(p, s, strlen(s)) == 0)
		if (KEY_IS("ID"))
			field = &os.id;
		else if (KEY_IS("VERSION_ID"))
			field = &os.version_id;
		else if (KEY_IS("PRETTY_NAME"))
			field = &os.pretty_name;
#undef KEY_IS
		if (field) {
			char *v = NULL;
			r = os_release_value(eq + 1, end, &v);
			if (r < 0)
				break;
			free(*field); /* a later assignment wins, as in a shell */
			*field = v;
		}
	next:
		line = *end ? end + 1 : end;
	}
out:
	if (r == 0 && !os.id && !(os.id = strdup("linux")))
		r = -ENOMEM;
	if (r == 0 && !os.pretty_name && !(os.pretty_name = strdup("Linux")))
		r = -ENOMEM;
	if (r < 0) {
		ni_host_os_free(&os);
		return r;
	}
	*ret = os;
	return 0;
}

int ni_host_os(int root_fd, struct ni_host_os *ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = ni_file_read(root_fd, "/etc/os-release", &text, &len, NULL);
	if (r == -ENOENT)
		r = ni_file_read(root_fd, "/usr/lib/os-release", &text, &len, NULL);
	if (r < 0)
		return r;
	if (strlen(text) != len)
		return -EBADMSG; /* a NUL byte */
	return ni_host_parse_os_release(text, ret);
}

static const char *parse_uint(const char *p, unsigned *ret)
{
	unsigned long v = 0;

	if (!isdigit((unsigned char)*p))
		return NULL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 1u << 20)
			return NULL; /* far beyond any CPU count: not a list we understand */
	}
	*ret = (unsigned)v;
	return p;
}

int ni_host_parse_cpu_list(const char *text, unsigned *ret_count)
{
	const char *p = text;
	unsigned long count = 0;

	while (*p && *p != '\n') {
		unsigned a, b;
		p = parse_uint(p, &a);
		if (!p)
			return -EBADMSG;
		b = a;
		if (*p == '-' && !(p = parse_uint(p + 1, &b)))
			return -EBADMSG;
		if (b < a)
			return -EBADMSG;
		count += (unsigned long)(b - a) + 1;
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EBADMSG;
	}
	if ((*p == '\n' && p[1]) || count == 0 || count > 1u << 20)
		return -EBADMSG;
	*ret_count = (unsigned)count;
	return 0;
}

int ni_host_cpus(int root_fd, unsigned *ret_count)
{
	_cleanup_free_ char *text = NULL;
	int r;

	r = read_virtual_at(root_fd, "sys/devices/system/cpu/online", &text);
	if (r < 0)
		return r;
	return ni_host_parse_cpu_list(text, ret_count);
}

/* "Name:   1234 kB" -> bytes; -EBADMSG for anything else. */
static int meminfo_bytes(const char *v, const char *end, uint64_t *ret)
{
	uint64_t n = 0;

	while (v < end && *v == ' ')
		v++;
	if (v == end || !isdigit((unsigned char)*v))
		return -EBADMSG;
	for (; v < end && isdigit((unsigned char)*v); v++) {
		if (n > (UINT64_MAX >> 10) / 10)
			return -EBADMSG;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	if ((size_t)(end - v) != 3 || memcmp(v, " kB", 3) != 0)
		return -EBADMSG;
	*ret = n << 10;
	return 0;
}

int ni_host_parse_meminfo(const char *text, struct ni_host_memory *ret)
{
	static const char *const names[] = { "MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached" };
	uint64_t v[NI_ELEMENTSOF(names)] = { 0 };
	bool seen[NI_ELEMENTSOF(names)] = { false };

	for (const char *line = text; *line;) {
		const char *end = strchrnul(line, '\n'), *colon = memchr(line, ':', (size_t)(end - line));
		for (size_t i = 0; colon && i < NI_ELEMENTSOF(names); i++)
			if ((size_t)(colon - line) == strlen(names[i]) && memcmp(line, names[i], strlen(names[i])) == 0) {
				int r = meminfo_bytes(colon + 1, end, &v[i]);
				if (r < 0)
					return r;
				seen[i] = true;
			}
		line = *end ? end + 1 : end;
	}
	if (!seen[0])
		return -EBADMSG;
	ret->total = v[0];
	if (seen[1])
		ret->available = v[1];
	else if (seen[2] && seen[3] && seen[4])
		ret->available = v[2] + v[3] + v[4]; /* before MemAvailable (Linux 3.14): what free(1) counted */
	else
		return -EBADMSG;
	return 0;
}

int ni_host_memory(int root_fd, struct ni_host_memory *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	r = read_virtual_at(root_fd, "proc/meminfo", &text);
	if (r < 0)
		return r;
	return ni_host_parse_meminfo(text, ret);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entry names of dir (under root_fd) that keep(name) accepts, sorted. */
static int list_dir(int root_fd, const char *dir, bool (*keep)(const char *), char ***ret, size_t *ret_n)
{
	int fd = openat(root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ni_safe_close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		char **nv;
		if (de->d_name[0] == '.' || !keep(de->d_name))
			continue;
		if (n >= HOST_LIST_MAX || !(nv = realloc(v, (n + 1) * sizeof(*v))) || !(nv[n] = strdup(de->d_name))) {
			int r = n >= HOST_LIST_MAX ? -E2BIG : -ENOMEM;
			if (n < HOST_LIST_MAX && nv)
				v = nv;
			ni_strv_free(v, n);
			closedir(d);
			return r;
		}
		v = nv;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool any_name(const char *name)
{
	return strlen(name) <= NAME_MAX;
}

int ni_host_interfaces(int root_fd, struct ni_host_iface **ret, size_t *ret_n)
{
	_cleanup_close_ int net_fd = -1;
	_cleanup_free_ struct ni_host_iface *v = NULL;
	char **names = NULL;
	size_t n = 0;
	int r;

	r = list_dir(root_fd, "sys/class/net", any_name, &names, &n);
	if (r < 0)
		return r;
	net_fd = openat(root_fd, "sys/class/net", O_PATH | O_DIRECTORY | O_CLOEXEC);
	v = calloc(n + 1, sizeof(*v));
	if (net_fd < 0 || !v) {
		r = net_fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_close_ int fd = openat(net_fd, names[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		char flags[32];
		uint64_t mtu = 0;
		unsigned long f;

		if (fd < 0) {
			r = -errno;
			goto out;
		}
		snprintf(v[i].name, sizeof(v[i].name), "%s", names[i]);
		/* No address (a tunnel, say) reads as an error on some kernels: then there is none. */
		if (read_attr(fd, "address", v[i].mac, sizeof(v[i].mac)) < 0)
			v[i].mac[0] = '\0';
		if ((r = read_attr_u64(fd, "mtu", &mtu)) < 0 || (r = read_attr(fd, "flags", flags, sizeof(flags))) < 0)
			goto out;
		if (mtu > UINT32_MAX || sscanf(flags, "%lx", &f) != 1) {
			r = -EBADMSG;
			goto out;
		}
		v[i].mtu = (unsigned)mtu;
		v[i].up = (f & IFF_UP) != 0;
	}
	*ret = steal_pointer(&v);
	*ret_n = n;
	r = 0;
out:
	ni_strv_free(names, n);
	return r;
}

int ni_host_block_devices(int root_fd, struct ni_host_block **ret, size_t *ret_n)
{
	_cleanup_close_ int blk_fd = -1;
	_cleanup_free_ struct ni_host_block *v = NULL;
	char **names = NULL;
	size_t n = 0;
	int r;

	r = list_dir(root_fd, "sys/block", any_name, &names, &n);
	if (r < 0)
		return r;
	blk_fd = openat(root_fd, "sys/block", O_PATH | O_DIRECTORY | O_CLOEXEC);
	v = calloc(n + 1, sizeof(*v));
	if (blk_fd < 0 || !v) {
		r = blk_fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_close_ int fd = openat(blk_fd, names[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		uint64_t sectors = 0, rot = 0, rem = 0;

		if (fd < 0) {
			r = -errno;
			goto out;
		}
		snprintf(v[i].name, sizeof(v[i].name), "%s", names[i]);
		/* size is in 512-byte sectors whatever the device's own block size (block/genhd.c) */
		if ((r = read_attr_u64(fd, "size", &sectors)) < 0 || (r = read_attr_u64(fd, "removable", &rem)) < 0)
			goto out;
		if (sectors > UINT64_MAX / 512) {
			r = -EBADMSG;
			goto out;
		}
		/* queue/ is missing for some virtual devices; device/model for most that are not SCSI or NVMe */
		if (read_attr_u64(fd, "queue/rotational", &rot) < 0)
			rot = 0;
		if (read_attr(fd, "device/model", v[i].model, sizeof(v[i].model)) < 0)
			v[i].model[0] = '\0';
		v[i].size = sectors * 512;
		v[i].rotational = rot != 0;
		v[i].removable = rem != 0;
	}
	*ret = steal_pointer(&v);
	*ret_n = n;
	r = 0;
out:
	ni_strv_free(names, n);
	return r;
}

static bool numa_node_name(const char *name)
{
	if (strncmp(name, "node", 4) != 0 || !name[4])
		return false;
	for (const char *p = name + 4; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

int ni_host_numa_nodes(int root_fd, unsigned *ret_count)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	r = list_dir(root_fd, "sys/devices/system/node", numa_node_name, &names, &n);
	if (r == -ENOENT) {
		*ret_count = 1; /* a kernel without CONFIG_NUMA: all memory is one node */
		return 0;
	}
	if (r < 0)
		return r;
	ni_strv_free(names, n);
	*ret_count = n ? (unsigned)n : 1;
	return 0;
}
