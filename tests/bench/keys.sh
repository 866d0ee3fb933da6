# The bench's sysctl keys, shared by tests/bench/bench.sh and icount.sh: sourced after fakehost_start.
# bench_keys WHO NKEYS: makes interfaces in the fake host until it has NKEYS writable per-interface
# keys, lists them in $T/keys and sets IFTYPE; exits naming WHO when the kernel does not allow it.
# Boolean keys with no side effect beyond the interface; the ones this kernel has and lets us write.
KEYS4="accept_local accept_redirects accept_source_route arp_accept arp_evict_nocarrier arp_filter arp_notify
	bc_forwarding bootp_relay drop_gratuitous_arp drop_unicast_in_l2_multicast ignore_routes_with_linkdown
	log_martians proxy_arp proxy_arp_pvlan route_localnet secure_redirects send_redirects shared_media src_valid_mark"
KEYS6="accept_ra_defrtr accept_ra_from_local accept_ra_mtu accept_ra_pinfo accept_ra_rtr_pref accept_redirects
	accept_untracked_na autoconf drop_unicast_in_l2_multicast drop_unsolicited_na ndisc_evict_nocarrier
	ndisc_notify optimistic_dad proxy_ndp suppress_frag_ndisc use_oif_addrs_only use_optimistic
	ignore_routes_with_linkdown keep_addr_on_down enhanced_dad"

bench_keys() {
	local who=$1 nkeys=$2 type
	# dummy interfaces where the kernel has the module; ifb (one device, no peer, as dummy) otherwise.
	IFTYPE=""
	for type in dummy ifb bridge; do
		if in_fake ip link add benchprobe type $type 2>/dev/null; then
			in_fake ip link del benchprobe
			IFTYPE=$type
			break
		fi
	done
	[ -n "$IFTYPE" ] || { echo "$who: cannot create dummy, ifb or bridge interfaces in a network namespace" >&2; exit 1; }
	in_fake sh -c '
		i=0
		while [ "$(cat /tmp/keys 2>/dev/null | wc -l)" -lt "$1" ] && [ $i -lt 200 ]; do
			ip link add bench$i type "$2" || exit 1
			for k in $3; do [ -w /proc/sys/net/ipv4/conf/bench$i/$k ] && echo net.ipv4.conf.bench$i.$k; done >> /tmp/keys
			for k in $4; do [ -w /proc/sys/net/ipv6/conf/bench$i/$k ] && echo net.ipv6.conf.bench$i.$k; done >> /tmp/keys
			i=$((i + 1))
		done' "$who" "$nkeys" "$IFTYPE" "$KEYS4" "$KEYS6"
	head -n "$nkeys" "/proc/$FAKE/root/tmp/keys" > "$T/keys"
	[ "$(wc -l < "$T/keys")" = "$nkeys" ] || { echo "$who: found only $(wc -l < "$T/keys") writable keys" >&2; exit 1; }
}

# bench_recipes: for parity p in 0 1 (key n gets (n + p) % 2, so every run flips every key), the
# fake host's /tmp/sysctl$p.conf and the recipes $T/steps$p (one YAML step a key) and $T/one$p (one
# step of every key).
bench_recipes() {
	local p
	for p in 0 1; do
		awk -v p=$p '{print $0 " = " (NR + p) % 2}' "$T/keys" > "/proc/$FAKE/root/tmp/sysctl$p.conf"
		mkdir -p "$T/steps$p" "$T/one$p"
		{ echo "recipe: bench-steps"; echo "steps:"
		  awk -v p=$p '{print "  - name: key" NR "\n    sysctl: { " $0 ": \"" (NR + p) % 2 "\" }"}' "$T/keys"; } > "$T/steps$p/10-bench.yaml"
		{ echo "recipe: bench-one"; echo "steps:"; echo "  - name: all-keys"; echo "    sysctl:"
		  awk -v p=$p '{print "      " $0 ": \"" (NR + p) % 2 "\""}' "$T/keys"; } > "$T/one$p/10-bench.yaml"
	done
}
