/* Argument parsing for the `nsenter` personality (util-linux's option names and forms). */
#define _GNU_SOURCE
#include "nsenter.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns.h"

#define KNOWS "this nsenter knows -t, -m, -u, -i, -n, -p, -a and --preserve-credentials"

/* util-linux options this nsenter refuses by name, each with what it does instead. */
static const struct {
	int c;
	const char *why;
} refused[] = {
	{ 'r', "the root directory is the entered mount namespace's (with -m), else this process's" },
	{ 'w', "the command starts in the current directory, or in / when it enters the mount namespace" },
	{ 'W', "the command starts in the current directory, or in / when it enters the mount namespace" },
	{ 'S', "the command runs as nodeinit's own user" },
	{ 'G', "the command runs with nodeinit's own groups" },
	{ 'U', "the user namespace is never entered" },
	{ 'C', "the cgroup namespace is never entered" },
	{ 'T', "the time namespace is never entered" },
	{ 'F', "the command always runs in a child, as the PID namespace needs" },
	{ 'Z', "SELinux contexts are not followed" },
};

#define OPT_PRESERVE_CREDENTIALS 0x100

/* The namespace letters a short option cluster may hold after -m, -u, ... ("-muinp"). */
static bool ns_letters(const char *s)
{
	return *s && s[strspn(s, "muinpa")] == '\0';
}

static unsigned ns_bits(int c)
{
	switch (c) {
	case 'm':
		return 1u << NI_NS_MNT;
	case 'u':
		return 1u << NI_NS_UTS;
	case 'i':
		return 1u << NI_NS_IPC;
	case 'n':
		return 1u << NI_NS_NET;
	case 'p':
		return 1u << NI_NS_PID;
	case 'a':
		return NI_NS_ALL;
	default:
		return 0;
	}
}

int ni_nsenter_parse(int argc, char **argv, struct ni_nsenter_args *ret, char *err, size_t errlen)
{
	/* util-linux's table: the namespace options take an optional file, so `-m/proc/1/ns/mnt` and
	 * `--mount=FILE` parse as what they mean and are refused by name. */
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "mount", optional_argument, NULL, 'm' },
		{ "uts", optional_argument, NULL, 'u' },
		{ "ipc", optional_argument, NULL, 'i' },
		{ "net", optional_argument, NULL, 'n' },
		{ "pid", optional_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },
		{ "user", optional_argument, NULL, 'U' },
		{ "cgroup", optional_argument, NULL, 'C' },
		{ "time", optional_argument, NULL, 'T' },
		{ "root", optional_argument, NULL, 'r' },
		{ "wd", optional_argument, NULL, 'w' },
		{ "wdns", required_argument, NULL, 'W' },
		{ "setuid", required_argument, NULL, 'S' },
		{ "setgid", required_argument, NULL, 'G' },
		{ "no-fork", no_argument, NULL, 'F' },
		{ "follow-context", no_argument, NULL, 'Z' },
		{ "preserve-credentials", no_argument, NULL, OPT_PRESERVE_CREDENTIALS },
		{ NULL, 0, NULL, 0 },
	};
	struct ni_nsenter_args a = { .target = 0 };
	char *end, name[64];
	long v;
	int c, li;

	optind = 0;
	opterr = 0;
	/* '+': stop at the command, so its own options are left alone. */
	while ((li = -1, c = getopt_long(argc, argv, "+:t:m::u::i::n::p::aU::C::T::r::w::W:S:G:FZ", longopts, &li)) != -1) {
		/* The option as the user spelt it, for messages (not argv[optind - 1]: that may be its value). */
		if (li >= 0)
			snprintf(name, sizeof(name), "--%s", longopts[li].name);
		else
			snprintf(name, sizeof(name), "-%c", c == '?' || c == ':' ? optopt : c);
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
		case 'a':
			a.mask |= NI_NS_ALL;
			break;
		case 'm':
		case 'u':
		case 'i':
		case 'n':
		case 'p':
			/* An optional argument attached to a short option is either more namespace letters
			 * ("-muinp") or a namespace file ("-m/proc/1/ns/mnt"). */
			if (optarg && li < 0 && ns_letters(optarg)) {
				for (const char *s = optarg; *s; s++)
					a.mask |= ns_bits(*s);
			} else if (optarg) {
				snprintf(err, errlen,
					 "nsenter: unsupported option '%s' with a file ('%s'): namespaces are entered from the "
					 "-t target only (" KNOWS ")",
					 name, optarg);
				return -EINVAL;
			}
			a.mask |= ns_bits(c);
			break;
		case OPT_PRESERVE_CREDENTIALS:
			/* util-linux keeps uid and gid when it enters a user namespace; this nsenter never enters
			 * one nor changes credentials, so it always preserves them. */
			break;
		case ':':
			if (strncmp(argv[optind - 1], "--", 2) == 0)
				snprintf(name, sizeof(name), "%s", argv[optind - 1]);
			snprintf(err, errlen, "nsenter: option '%s' needs a value", name);
			return -EINVAL;
		case '?':
			if (li < 0 && optopt == 0)
				snprintf(name, sizeof(name), "%s", argv[optind - 1]); /* an unknown long option */
			snprintf(err, errlen, "nsenter: unsupported option '%s' (" KNOWS ")", name);
			return -EINVAL;
		default:
			for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
				if (refused[i].c == c) {
					snprintf(err, errlen, "nsenter: unsupported option '%s': %s (" KNOWS ")", name,
						 refused[i].why);
					return -EINVAL;
				}
			snprintf(err, errlen, "nsenter: unsupported option '%s' (" KNOWS ")", name);
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
