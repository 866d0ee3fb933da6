/* The util-linux nsenter subset that charts use in hooks, for the binary invoked as `nsenter`. */
#ifndef NI_NSENTER_H
#define NI_NSENTER_H

#include <stddef.h>
#include <sys/types.h>

struct ni_nsenter_args {
	pid_t target;
	unsigned mask;     /* bits of enum ni_ns_kind */
	int command_index; /* argv index of the command; == argc when none was given */
};

/* Parses `-t PID [-m -u -i -n -p -a] [--] [COMMAND...]`. Returns 0, or -EINVAL with err set. */
int ni_nsenter_parse(int argc, char **argv, struct ni_nsenter_args *ret, char *err, size_t errlen);

#endif
