/* Users and groups from the host's /etc/passwd and /etc/group, read through its root (no NSS). */
#ifndef NI_PASSWD_H
#define NI_PASSWD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ni_passwd_db {
	NI_PASSWD_USERS,  /* etc/passwd: name:password:uid:gid:gecos:home:shell */
	NI_PASSWD_GROUPS, /* etc/group: name:password:gid:members */
};

/*
 * Parses a decimal id: digits only, no sign or blanks, below 4294967295 ((uid_t)-1 means "no
 * change" to chown, so it is never an id). Returns 0 or -EINVAL.
 */
int ni_passwd_parse_id(const char *s, size_t len, uint32_t *ret_id);

/*
 * Parses one line (without its newline) of db. Returns 1 with the name (pointing into line, not
 * NUL-terminated) and the id from the third field; 0 for a line to skip (empty, a '#' comment,
 * a '+' or '-' NIS compat entry); -EINVAL for a malformed one: a wrong number of fields, an empty
 * name, a control character in the name, or a bad uid or gid.
 */
int ni_passwd_parse_line(enum ni_passwd_db db, const char *line, size_t len, const char **ret_name,
			 size_t *ret_name_len, uint32_t *ret_id);

/*
 * Finds name in db under root_fd (the first well-formed line that has it, as glibc does; malformed
 * lines never match). Returns 0, -ESRCH when no line has it, or -errno when the file cannot be read.
 */
int ni_passwd_lookup(int root_fd, enum ni_passwd_db db, const char *name, uint32_t *ret_id);

/* A user or group as recipes give it: a decimal id is taken as it is, anything else is looked up. */
int ni_passwd_resolve(int root_fd, enum ni_passwd_db db, const char *spec, uint32_t *ret_id);

#endif
