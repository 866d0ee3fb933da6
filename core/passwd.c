/* A strict reader of passwd(5) and group(5) files, for a static binary that has no NSS. */
#define _GNU_SOURCE
#include "passwd.h"

#include "file.h"
#include "util.h"

static const char *const db_path[] = { "/etc/passwd", "/etc/group" };
static const unsigned db_fields[] = { 7, 4 };

int ni_passwd_parse_id(const char *s, size_t len, uint32_t *ret_id)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return -EINVAL;
	*ret_id = (uint32_t)v;
	return 0;
}

int ni_passwd_parse_line(enum ni_passwd_db db, const char *line, size_t len, const char **ret_name,
			 size_t *ret_name_len, uint32_t *ret_id)
{
	const char *field[7], *end = line + len;
	size_t flen[7];
	unsigned n = 0, want = db_fields[db];
	uint32_t id, gid;

	if (len == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-')
		return 0;
	for (const char *p = line;;) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (n == want)
			return -EINVAL; /* too many fields */
		field[n] = p;
		flen[n] = (size_t)((colon ? colon : end) - p);
		n++;
		if (!colon)
			break;
		p = colon + 1;
	}
	if (n != want || flen[0] == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return -EINVAL;
	if (ni_passwd_parse_id(field[2], flen[2], &id) < 0)
		return -EINVAL;
	if (db == NI_PASSWD_USERS && ni_passwd_parse_id(field[3], flen[3], &gid) < 0)
		return -EINVAL;
	*ret_name = field[0];
	*ret_name_len = flen[0];
	*ret_id = id;
	return 1;
}

int ni_passwd_lookup(int root_fd, enum ni_passwd_db db, const char *name, uint32_t *ret_id)
{
	_cleanup_free_ char *buf = NULL;
	size_t len, nlen = strlen(name);
	int r;

	r = ni_file_read(root_fd, db_path[db], &buf, &len, NULL);
	if (r < 0)
		return r;
	for (const char *p = buf, *end = buf + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
		const char *ename;
		size_t elen;
		uint32_t id;

		if (ni_passwd_parse_line(db, p, (size_t)(eol - p), &ename, &elen, &id) == 1 && elen == nlen &&
		    memcmp(ename, name, nlen) == 0) {
			*ret_id = id;
			return 0;
		}
		p = eol + 1;
	}
	return -ESRCH;
}

int ni_passwd_resolve(int root_fd, enum ni_passwd_db db, const char *spec, uint32_t *ret_id)
{
	if (ni_passwd_parse_id(spec, strlen(spec), ret_id) == 0)
		return 0;
	if (!*spec || strchr(spec, ':') || strchr(spec, '\n'))
		return -EINVAL;
	return ni_passwd_lookup(root_fd, db, spec, ret_id);
}
