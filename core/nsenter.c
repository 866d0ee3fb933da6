/* Argument parsing for the `nsenter` personality (util-linux's option names and forms). */
#define _GNU_SOURCE
#include "nsenter.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "ns.h"

int ni_nsenter_parse(int argc, char **argv, struct ni_nsenter_args *ret, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, 't' }, { "mount", no_argument, NULL, 'm' },
		{ "uts", no_argument, NULL, 'u' },          { "ipc", no_argument, NULL, 'i' },
		{ "net", no_argument, NULL, 'n' },          { "pid", no_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },          { NULL, 0, NULL, 0 },
	};
	struct ni_nsenter_args a = { .target = 0 };
	char *end;
	long v;
	int c;

	optind = 0;
	opterr = 0;
	/* '+': stop at the command, so its own options are left alone. */
	while ((c = getopt_long(argc, argv, "+:t:muinpa", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v <= 0 || v > INT_MAX) {
				snprintf(err, errlen, "nsenter: not a process id: '%s'", optarg);
				return -EINVAL;
			}
			a.target = (pid_t)v;
			break;
		case 'm':
			a.mask |= 1u << NI_NS_MNT;
			break;
		case 'u':
			a.mask |= 1u << NI_NS_UTS;
			break;
		case 'i':
			a.mask |= 1u << NI_NS_IPC;
			break;
		case 'n':
			a.mask |= 1u << NI_NS_NET;
			break;
		case 'p':
			a.mask |= 1u << NI_NS_PID;
			break;
		case 'a':
			a.mask |= NI_NS_ALL;
			break;
		case ':':
			snprintf(err, errlen, "nsenter: option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "nsenter: unsupported option '%s' (this nsenter knows -t, -m, -u, -i, -n, -p, -a)",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (a.target == 0) {
		snprintf(err, errlen, "nsenter: no target: give -t PID");
		return -EINVAL;
	}
	if (a.mask == 0) {
		snprintf(err, errlen, "nsenter: no namespace to enter: give -m, -u, -i, -n, -p or -a");
		return -EINVAL;
	}
	a.command_index = optind;
	*ret = a;
	return 0;
}
