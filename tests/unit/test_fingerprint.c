/*
 * Golden fingerprints: the material and SHA-256 nodeinit 0.1.0 computed, for 32 value shapes and
 * every step of recipes/, examples/recipes/ and the upgrade fixture; and this release's for steps
 * that capture a module table (tests/fixtures/modules). A change here re-runs `once`
 * steps on every upgraded node: do not update these values, version the material instead. Any
 * change that makes a fingerprint come out otherwise also bumps NI_FINGERPRINT_VERSION (and the pin
 * in test_shapes), so no fingerprint cache (cache.h) written by the old code is trusted.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fingerprint.h"
#include "luart.h"
#include "recipe.h"
#include "unit.h"

/* The shapes the 0.1.0 unit test compared its Lua and C materials on (1-24), and eight more (25-32). */
static const char chunk[] =
	"local material = ...\n"
	"local fc = { src = 'local x = 1\\nreturn x\\n', chunkname = '@t.lua', file = 't.lua' }\n"
	"local shared = { 1, 2 }\n"
	"local cyc = {}; cyc.self = cyc\n"
	"local deep = {}; local d = deep; for i = 1, 150 do d.next = { i }; d = d.next end\n"
	"local mt = setmetatable({ a = 1 }, { __index = function() return 5 end })\n"
	"local wide = {}; for i = 1, 300 do wide['k' .. i] = i % 7 == 0 and { i, 'x' } or tostring(i) end\n"
	"local big = {}; for i = 1, 60000 do big['key' .. i] = i end\n"
	"local up = { 'captured' }\n"
	"local function f(a) return a, up end\n"
	"local bigf = {}; for i = 1, 60000 do bigf['f' .. i] = f end\n"
	"local cases = { 's', '', 1, -0.0, 1.5, 1e300, 0/0, math.huge, -math.huge, math.mininteger, true, false,\n"
	"  { yaml = { name = 'k', sysctl = { ['net.ipv4.ip_forward'] = '1', ['net.core.somaxconn'] = 4096 } } },\n"
	"  { 'a', 'b', x = 1, [true] = 2, [1.5] = 3, [-7] = 'neg' },\n"
	"  { a = shared, b = shared, c = { shared } }, cyc, deep, mt, { m = mt, n = mt },\n"
	"  { f = f, g = print, h = f, list = { f } }, wide, big, bigf,\n"
	"  { ['a\\0b'] = 1, a = 2, ['a\\0a'] = 3, ['\\xc3\\xa4'] = 4, B = 5, [''] = 6 },\n"
	"  { [shared] = 1, [f] = 2 }, { yaml = { nested = { deeper = { list = { 1, 2.5, 'three', false } } } } } }\n"
	"local out = {}\n"
	"for i = 1, #cases do\n"
	"  local parts = { body = cases[i], when = 'once', shared = shared }\n"
	"  out[i] = material('rec', 'step' .. i, parts, fc)\n"
	"  assert(type(out[i]) == 'string') -- as in 0.1.0's chunk: shape 29 names the line of its function\n"
	"end\n"
	"local fc2 = { src = 'return function(a)\\n  return a\\nend\\n', chunkname = '@u.lua', file = 'u.lua' }\n"
	"local g = load(fc2.src, '@u.lua')()\n"
	"local pp = setmetatable({}, { __pairs = function(t) return next, { z = 1, y = 2 }, nil end, __index = { z = 1, y = 2 } })\n"
	"local ts = { [setmetatable({}, { __tostring = function() return 'B' end })] = 1, [setmetatable({}, { __tostring = function() return 'A' end })] = 2 }\n"
	"local mixed = { [1] = 1, [2.5] = 2, [-3] = 3, [10] = 4, [0.5] = 5, [false] = 6, [true] = 7, s = 8 }\n"
	"local function dn(n) local t = {} for i = 1, n do t = { t } end return t end\n"
	"local extra = { { g = g, h = g }, pp, ts, mixed, { f = function() end }, dn(300), dn(3000), dn(40000) }\n"
	"for i = 1, #extra do\n"
	"  local parts = { body = extra[i], params = { n = i } }\n"
	"  out[24 + i] = material('rec', 'x' .. i, parts, fc2)\n"
	"end\n"
	"return out\n";

static const struct {
	size_t len;
	const char *hash;
	const char *material; /* whole, or NULL and prefix */
	const char *prefix;
} shapes[] = {
	{ 110, "d77e9d85a601e2befb8a8c78f7f26edea7966a624b6bc514ec9cf17f3997e243",
	  "nodeinit-step-1|s3:rec|s5:step1|{|s4:body|=|s1:s|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 109, "8a89fdedf3745122c026545158f9444af893331f8f2a8e0a94586efafe486cc9",
	  "nodeinit-step-1|s3:rec|s5:step2|{|s4:body|=|s0:|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 108, "23368e71593e55bdb6698387e0e719d77d9549985eeb041043a50ea3b1224837",
	  "nodeinit-step-1|s3:rec|s5:step3|{|s4:body|=|i1|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 109, "812ffa52ae4b6c649df44157a794e44d50dd78601c2f5bf9a34aad1ab7a03ce0",
	  "nodeinit-step-1|s3:rec|s5:step4|{|s4:body|=|n-0|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 110, "1b9779ba3723efad7e0848bef44bad47afc6c2706b01b8a6d13e633dc7019ed4",
	  "nodeinit-step-1|s3:rec|s5:step5|{|s4:body|=|n1.5|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 130, "8499d255f6bb6c430a86a5a9419476b2c39af1ac13fb52e66bd5425c835a9480",
	  "nodeinit-step-1|s3:rec|s5:step6|{|s4:body|=|n1.0000000000000001e+300|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 111, "b1f3439b6f763449b01fb5d2aa1b938f1083bb759adbe75025e2867912df64c3",
	  "nodeinit-step-1|s3:rec|s5:step7|{|s4:body|=|n-nan|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 110, "aadc9855186a0e1f0f85bf379b2a369556d3bd85fc8fcb918ce958fe06d2341f",
	  "nodeinit-step-1|s3:rec|s5:step8|{|s4:body|=|ninf|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 111, "05a8e70e9f1010e654363aa09aecd91d5d553ed9c67d0ff576349bfcae001a8e",
	  "nodeinit-step-1|s3:rec|s5:step9|{|s4:body|=|n-inf|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 131, "9c063efe793b4e77f28dbc281eee2969b1097df157c82d3b11fee99e048d0051",
	  "nodeinit-step-1|s3:rec|s6:step10|{|s4:body|=|i-9.2233720368547758e+18|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 111, "011ab5ff6148d2c9663bcc258bb0e0069ad6e6f9fcf683ba1fe712ec3728a478",
	  "nodeinit-step-1|s3:rec|s6:step11|{|s4:body|=|true|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 112, "1d065c976958f95524925887a6e7217cfb119b69916b1069cd0aef69c7f808e1",
	  "nodeinit-step-1|s3:rec|s6:step12|{|s4:body|=|false|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 227, "ecf44d95e90d8dad8e8d32c90703c8f29e7c1d553cfe2bb280b7c7419b8f7efd",
	  "nodeinit-step-1|s3:rec|s6:step13|{|s4:body|=|{|s4:yaml|=|{|s4:name|=|s1:k|,|s6:sysctl|=|{|s18:net.core.somaxconn|=|i4096|,|s19:net.ipv4.ip_forward|=|s1:1|,|}|,|}|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 185, "9e6e2e01c115d188f8c9cdb1a7f2a1e6fc4015f8a92e79e306bd2f12e4016b7f",
	  "nodeinit-step-1|s3:rec|s6:step14|{|s4:body|=|{|true|=|i2|,|i-7|=|s3:neg|,|i1|=|s1:a|,|n1.5|=|i3|,|i2|=|s1:b|,|s1:x|=|i1|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 157, "d44e0f3212336a0301da93ec6b81bb332e157245e84ff1c92d8a15721a502dda",
	  "nodeinit-step-1|s3:rec|s6:step15|{|s4:body|=|{|s1:a|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s1:b|=|@3|,|s1:c|=|{|i1|=|@3|,|}|,|}|,|s6:shared|=|@3|,|s4:when|=|s4:once|,|}", NULL },
	{ 125, "8705b50585d6a159fdf70aa4cae415ebbcc87d07123f7e196135afe2ef3b7fc2",
	  "nodeinit-step-1|s3:rec|s6:step16|{|s4:body|=|{|s4:self|=|@2|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 4202, "3f86bd2ad1935ad28ccf6f319c0b1efaac7e8b6ad6e96610832842488788e61c",
	  NULL, "nodeinit-step-1|s3:rec|s6:step17|{|s4:body|=|{|s4:next|=|{|i1|=|i1|,|s4:next|=|{|i1|=|i2|,|s4:next|=|{|i1|=|i3|,|s4:next|=|{|i1|=|i4|,|s4:next|=|{|i1|=|i5|,|s4:" },
	{ 122, "2a92bc86e2ce58575e251ba5a81c9784bb60ad2d5da47d58ad70b9cd0a836393",
	  "nodeinit-step-1|s3:rec|s6:step18|{|s4:body|=|{|s1:a|=|i1|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 147, "726b076881b3641183c3ff94af4c52ac0b238d286f939eabab005f0f77d571b3",
	  "nodeinit-step-1|s3:rec|s6:step19|{|s4:body|=|{|s1:m|=|{|s1:a|=|i1|,|}|,|s1:n|=|@3|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 218, "3acac6b9eeca7a105e554f4fa3a2ab8d368cdd698c940a49c09f1054c7287bc7",
	  "nodeinit-step-1|s3:rec|s6:step20|{|s4:body|=|{|s1:f|=|f:=native:10|u:up=|{|i1|=|s8:captured|,|}|,|s1:g|=|cfunction|,|s1:h|=|@3|,|s4:list|=|{|i1|=|@3|,|}|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 6476, "fcd79a0d0e08c73b7af4ed775ecb759259f1ac723b52e6a72d5309df68540bbf",
	  NULL, "nodeinit-step-1|s3:rec|s6:step21|{|s4:body|=|{|s2:k1|=|s1:1|,|s3:k10|=|s2:10|,|s4:k100|=|s3:100|,|s4:k101|=|s3:101|,|s4:k102|=|s3:102|,|s4:k103|=|s3:103|,|s4:k1" },
	{ 1258952, "2413047406203664cb695405c681672fdaf6f76ff27eaacc68605683f665a19b",
	  NULL, "nodeinit-step-1|s3:rec|s6:step22|{|s4:body|=|{|s4:key1|=|i1|,|s5:key10|=|i10|,|s6:key100|=|i100|,|s7:key1000|=|i1000|,|s8:key10000|=|i10000|,|s8:key10001|=|i100" },
	{ 964545, "b9f238f1a4e24049d25ca37023d057b30bd3ef52caa76d850f067b738d384abe",
	  NULL, "nodeinit-step-1|s3:rec|s6:step23|{|s4:body|=|{|s2:f1|=|f:=native:10|u:up=|{|i1|=|s8:captured|,|}|,|s3:f10|=|@3|,|s4:f100|=|@3|,|s5:f1000|=|@3|,|s6:f10000|=|@3|," },
	{ 186, "78733f55aefb70af242fc3ff2d07aac593043a9a71301e85863d120112383070",
	  "nodeinit-step-1|s3:rec|s6:step24|{|s4:body|=|{|s0:|=|i6|,|s1:B|=|i5|,|s1:a|=|i2|,|s3:a\000a|=|i3|,|s3:a\000b|=|i1|,|s2:\303\244|=|i4|,|}|,|s6:shared|=|{|i1|=|i1|,|i2|=|i2|,|}|,|s4:when|=|s4:once|,|}", NULL },
	{ 135, "9f9a5d6077db3a50f1038974d4dc4d81cbd45921b5f0f74e51f4e98d538bda63",
	  "nodeinit-step-1|s3:rec|s2:x1|{|s4:body|=|{|s1:g|=|f:return function(a)\n  return a\nend|,|s1:h|=|@3|,|}|,|s6:params|=|{|s1:n|=|i1|,|}|,|}", NULL },
	{ 102, "48db27ede07c1850cb53f8d5bbe41dd426ee04c640e0b16df8c76a156ab74c19",
	  "nodeinit-step-1|s3:rec|s2:x2|{|s4:body|=|{|s1:y|=|i2|,|s1:z|=|i1|,|}|,|s6:params|=|{|s1:n|=|i2|,|}|,|}", NULL },
	{ 100, "b5642ef885bd1579b49d285f914b358ea96a38e27c454ffaaa950934bd731dd1",
	  "nodeinit-step-1|s3:rec|s2:x3|{|s4:body|=|{|{|}|=|i2|,|{|}|=|i1|,|}|,|s6:params|=|{|s1:n|=|i3|,|}|,|}", NULL },
	{ 171, "eb1f6b7deafe99710a03e136e1b315933c0ef9584249e85e8719bccd3be07b29",
	  "nodeinit-step-1|s3:rec|s2:x4|{|s4:body|=|{|false|=|i6|,|true|=|i7|,|i-3|=|i3|,|n0.5|=|i5|,|i1|=|i1|,|n2.5|=|i2|,|i10|=|i4|,|s1:s|=|i8|,|}|,|s6:params|=|{|s1:n|=|i4|,|}|,|}", NULL },
	{ 100, "28ce479eada0584454a982ea85f2063f0ccde07a313047cea1f2716a837377fa",
	  "nodeinit-step-1|s3:rec|s2:x5|{|s4:body|=|{|s1:f|=|f:=native:31|,|}|,|s6:params|=|{|s1:n|=|i5|,|}|,|}", NULL },
	{ 3378, "c0161780dbf9c3e92fc9f14dfe4a5f8ae49f083a2a4cc001a098fcb2c06aae0e",
	  NULL, "nodeinit-step-1|s3:rec|s2:x6|{|s4:body|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|" },
	{ 33078, "d7653539d19cce4c9b28ff1d66f4dab56d71986f0555f070e5a713ce46b54e22",
	  NULL, "nodeinit-step-1|s3:rec|s2:x7|{|s4:body|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|" },
	{ 440078, "4a46a5e858aa1169a3d73f33e477f45c5ff7d0406d8f615c9141b9d3626b946b",
	  NULL, "nodeinit-step-1|s3:rec|s2:x8|{|s4:body|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|{|i1|=|" },
};

/*
 * The stock recipes are templates operators copy into their ConfigMap, so an image upgrade never
 * changes the text nodes run; these values guard the fingerprint algorithm. Three were re-pinned for
 * issue 13, whose stock recipes changed on purpose (0.1.0 had containerd-mirror/mirrors cad6c53e...,
 * kernel-modules/sysctls b0e657d6..., sysctl/apply 0e1e6e40...): a node whose operator copies the new
 * text re-runs those steps once, idempotently, as for any edit of theirs.
 */
static const struct {
	const char *dir, *recipe, *step, *fingerprint;
} recipes[] = {
	{ "recipes", "containerd-mirror", "mirrors", "d23ed95677774f1368ac227375a490a60daad973c78745002e7b871bc114cd7e" },
	{ "recipes", "hugepages", "hugepages", "0d1f697302aaad5f9283264e0cbfa0cd4489aabc8abeb19ede896e465d87ebe6" },
	{ "recipes", "hugepages", "transparent-hugepages", "fdc34b776e5275d06dce90f493fa0e4c0df7a19ac5ff4e04eeb2a1a94d03c9cc" },
	{ "recipes", "kernel-modules", "persist", "429653dd15a6ef19f9f82e1f8b9b88a462b41f6f019b7bed973ce9e4887e820e" },
	{ "recipes", "kernel-modules", "load", "bdb7b0609f12f7b9a3b6f0fd6b47f28bef395e7a9a3de0f43f0ae9b224c165bf" },
	{ "recipes", "kernel-modules", "sysctls", "c6d53c8777c2d8fd87b723d5433bdebe5aeac3909ff12bccc1140d721171d458" },
	{ "recipes", "legacy-script", "example", "cf748d862687b9f2d4a1b458f22d474f265e040d2f487b061e35a4e2f212fd0f" },
	{ "recipes", "sysctl", "apply", "b921de3add7bcd3dbecd3f217c08c90cbea2482f5b2f8197e85d07c1a711c431" },
	{ "examples/recipes", "network", "br-netfilter", "85f6ca9371beab65b54926dff0d990a416ebdefad85860f1103ea44ebb6b424c" },
	{ "examples/recipes", "network", "ip-forward", "18ad7c68d61b308ca1ff2eaf6e7429af73e745d5daa09aedb59c05dc0fe3c9e8" },
	{ "examples/recipes", "network", "bridge-nf-call", "f398ed4202e68d2a0ae172b1b409fc4abb5b13befe40a650105595e5f2ac0f1c" },
	{ "examples/recipes", "containerd-mirror", "certs-dir", "62138470ddcb031688b2620780bdefbe88f7299ea19c75cdfed14e9c29dd59c2" },
	{ "examples/recipes", "containerd-mirror", "docker-io-mirror", "c6199eb46669ffb569c89422740d28d5251e4fad264d574b86a1f24822f7a81d" },
	{ "examples/recipes", "containerd-mirror", "config-path", "3439b6f18dea387569b5b036710437caae9e247584da6a64310fa8efc21adfbb" },
	{ "examples/recipes", "node-tuning", "inotify", "d39ffd8fd656219edc5d8ecdfeff18a7998be166cb91cc54303109bf916e2a7b" },
	{ "examples/recipes", "node-tuning", "transparent-hugepages", "3e50035c6284cc69e8569b53bcaa9ac800b1c5be627e6f9113567d2432e39c4e" },
	/* node-pools came after 0.1.0 (the kube branch): pinned as first shipped, for the same reason. */
	{ "examples/recipes", "node-pools", "gpu-hugepages", "00835c558f576758c8f1dae191700df1d726874cac51e40a85ac749542ab2fcf" },
	{ "examples/recipes", "node-pools", "ingress-port-range", "a4ef9ea0591c4c9061e5e885713269908cfb8a1687326f38aa4a70f5d6d9a2ec" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "base", "sysctl", "a5ef7207d4833bb2857b9f2265ff8672debfc7a719b93a1036609256235417c8" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "base", "marker", "296bc721f8dd29b0e629349074d8d351243a07941e07793249e798dca0fa47fc" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "base", "kept", "ecb2f466cafb321574e7024ebd372e49458a2904e438e39833f8246ec5422115" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "base", "params", "4f4ccd7c1cc9772e38f8cd40e97533605b4667a1a65d03ca64ab452efe37a5cb" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "base", "secret", "dffffe388ffa9e6529f2e138fd8f984c8be8b1342355a4ca61c3ff65057e69e0" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "base", "exec", "c78b76135aae9347c438268765730f59a398663f4857c2c0957d139533a2ba44" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "yaml", "forward", "8cf8dcb33b5b5321ed9f523aebfa2b7a3f523e3aec07cb0206175a13f15cc030" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "yaml", "file", "d049803fcd9a0da594a2d79d52904ec842086ccf2325274db9a1e7abd73582e4" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "yaml", "exec", "fab336b919bd5e9887839b8d7cbc553d5922919b6c88fdb6cab8ec0312f08c23" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "yaml", "script", "b636671c9d0d2f29b8635b39fc405f4ebccc1a2554a5012570ea838bf452a222" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "yaml", "lua", "8e15808b31c7e9892cf4f8dce28b02b62cf719e7997e67be5e6a7fb278110a6c" },
	{ "tests/fixtures/upgrade-v0.1.0/recipes", "yaml", "checked", "fd1fc5527cb05b6d0b82610410717f7fd85f6dc20695399aedd779174329814a" },
	/*
	 * Steps holding a module table in an upvalue (tests/fixtures/modules): their material walks the
	 * module's 0.1.0 functions (core/fingerprint.c freezes the keys) and each one's upvalues (file's and
	 * yaml's have one). A new upvalue in a 0.1.0 binding changes these and re-runs such `once` steps
	 * after an upgrade: make that a decision (version the material), not an accident.
	 */
	{ "tests/fixtures/modules", "modules", "exec", "fb9196c1c0e01107533ece0c531c2b635163ed96c531383f421a9d8aaeca8792" },
	{ "tests/fixtures/modules", "modules", "file", "f418f937e7cff2b4984b2c3fea9ceb415719ea91f443948aae79b51d7d124c31" },
	{ "tests/fixtures/modules", "modules", "log", "fa9ec930a5ea604228b2a151fffa388e2420f9452ff31ec40bcf50c02d4e7c79" },
	{ "tests/fixtures/modules", "modules", "ns", "dc1dbb7a506a177c363b6808967172e66dec64b45402fbfc855c2ba34f682109" },
	{ "tests/fixtures/modules", "modules", "sysctl", "f2222e3974b4aa8216e30fe79354e0dac4427a28305bb4e487102c9bb32b2421" },
	{ "tests/fixtures/modules", "modules", "yaml", "e6675c9925eda28f30621ffad2e3b779f691bad76d306dcd529519eb67663ea0" },
	{ "tests/fixtures/modules", "modules", "required", "22716c0d751d326f753c864b8a58e6fe53aeb03290b2c4e424e397ffb9e49b39" },
};

static int setup(void **state)
{
	static struct ni_ctx ctx = { .proc_fd = -1, .root_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
	lua_State *L;

	ctx.log.out = stderr;
	L = ni_lua_new(&ctx);
	assert_non_null(L);
	*state = L;
	return 0;
}

static int teardown(void **state)
{
	ni_lua_close(*state);
	return 0;
}

static void test_shapes(void **state)
{
	lua_State *L = *state;
	size_t n = sizeof(shapes) / sizeof(shapes[0]);

	assert_int_equal(n, 32);
	/* The values below are version 1's: a change to them comes with a bump of the version (and of this line). */
	assert_int_equal(NI_FINGERPRINT_VERSION, 1);
	assert_int_equal(ni_lua_push_env(L), LUA_OK);
	assert_int_equal(ni_lua_load(L, "=native", chunk, sizeof(chunk) - 1, -1), LUA_OK);
	lua_remove(L, -2);
	lua_pushcfunction(L, ni_fingerprint_l_material);
	if (ni_lua_pcall(L, 1, 1) != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
	assert_int_equal(lua_rawlen(L, -1), n);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *m;
		char hex[NI_SHA256_HEX_LEN + 1];

		lua_rawgeti(L, -1, (lua_Integer)i + 1);
		m = lua_tolstring(L, -1, &len);
		ni_fingerprint_hex(m, len, hex);
		if (shapes[i].material && (len != shapes[i].len || memcmp(m, shapes[i].material, len) != 0))
			fail_msg("shape %zu: material differs:\ngot:  %.*s\nwant: %s", i + 1, (int)len, m, shapes[i].material);
		if (!shapes[i].material && (len != shapes[i].len || strncmp(m, shapes[i].prefix, strlen(shapes[i].prefix)) != 0))
			fail_msg("shape %zu: material differs: %zu bytes (want %zu), starts %.200s", i + 1, len, shapes[i].len, m);
		if (strcmp(hex, shapes[i].hash) != 0)
			fail_msg("shape %zu: fingerprint %s, want %s", i + 1, hex, shapes[i].hash);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Runs chunk with begin, finish, material as its arguments; leaves its one result on the stack. */
static void run_chunk(lua_State *L, const char *name, const char *src)
{
	assert_int_equal(ni_lua_push_env(L), LUA_OK);
	assert_int_equal(ni_lua_load(L, name, src, strlen(src), -1), LUA_OK);
	lua_remove(L, -2);
	lua_pushcfunction(L, ni_fingerprint_l_begin);
	lua_pushcfunction(L, ni_fingerprint_l_finish);
	lua_pushcfunction(L, ni_fingerprint_l_material);
	if (ni_lua_pcall(L, 3, 1) != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
}

/* Streamed (begin, finish without globals) is the same fingerprint as the whole material, every shape. */
static void test_streamed_is_material(void **state)
{
	static const char check[] =
		"local begin, finish, material = ...\n"
		"local fc = { src = 'x\\n', chunkname = '@t.lua', file = 't.lua' }\n"
		"local big = {}; for i = 1, 30000 do big[i] = string.rep('v', i % 50) end\n"
		"local huge = string.rep('h', 200000)\n"
		"local cases = { 's', { big = big }, { huge, huge, { huge } }, { print, f = function() end } }\n"
		"local out = {}\n"
		"for i, c in ipairs(cases) do\n"
		"  local parts = { body = c, when = 'once' }\n"
		"  out[#out + 1] = material('rec', 'x' .. i, parts, fc)\n"
		"  out[#out + 1] = finish(begin('rec', 'x' .. i, parts, fc), nil)\n"
		"  out[#out + 1] = finish(begin('rec', 'x' .. i, parts, fc), { unrelated = 1 })\n"
		"end\n"
		"return out\n";
	lua_State *L = *state;

	run_chunk(L, "=streamed", check);
	for (lua_Integer i = 1; i <= 12; i += 3) {
		char hex[NI_SHA256_HEX_LEN + 1];
		size_t len;
		const char *m;

		lua_rawgeti(L, -1, i);
		m = lua_tolstring(L, -1, &len);
		ni_fingerprint_hex(m, len, hex);
		lua_rawgeti(L, -2, i + 1);
		lua_rawgeti(L, -3, i + 2);
		assert_string_equal(lua_tostring(L, -2), hex);
		assert_string_equal(lua_tostring(L, -1), hex);
		lua_pop(L, 3);
	}
	lua_pop(L, 1);
}

/*
 * The globals part, pinned: body names helper (a global), other (not one) and other.x (a field);
 * helper names level2, which joins the queue. Comments, strings, fields and long brackets name nothing.
 */
static void test_globals(void **state)
{
	static const char check[] =
		"local begin, finish, material = ...\n"
		"local src = 'function helper(s) return level2(s) .. \"!\" end\\n'\n"
		"  .. 'local body = function() return helper(\"a\"), other.x, \"str helper2\" end\\n'\n"
		"  .. 'function level2(s) return s end\\n'\n"
		"  .. 'local quiet = function(t) -- helper\\n'\n"
		"  .. '  return \"helper\", \\'helper\\', t.helper, t:helper(), [[helper]], [==[ ]] helper ]==] --[[ helper ]]\\n'\n"
		"  .. 'end\\n'\n"
		"  .. 'local loud = function() return \"a\"..helper, 0x1p4, 1e+5 end\\n'\n"
		"  .. 'return body, quiet, loud\\n'\n"
		"local env = {}\n"
		"local body, quiet, loud = load(src, '@g.lua', 't', env)()\n"
		"local fc = { src = src, chunkname = '@g.lua', file = 'g.lua' }\n"
		"local globals = { helper = env.helper, level2 = env.level2, unrelated = 'u' }\n"
		"local function fp(f, g) return finish(begin('rec', 'g', { body = f }, fc), g) end\n"
		"return { fp(body, globals), fp(quiet, globals), fp(quiet, nil), fp(loud, globals), fp(loud, nil),\n"
		"         fp(body, { helper = env.helper, level2 = function() end }) }\n";
	static const char want[] =
		"nodeinit-step-1|s3:rec|s1:g|{|s4:body|=|f:local body = function() return helper(\"a\"), other.x, \"str "
		"helper2\" end|,|}|g:helper=|f:function helper(s) return level2(s) .. \"!\" end|g:level2=|f:function "
		"level2(s) return s end";
	lua_State *L = *state;
	char hex[NI_SHA256_HEX_LEN + 1];

	run_chunk(L, "=globals", check);
	ni_fingerprint_hex(want, sizeof(want) - 1, hex);
	lua_rawgeti(L, -1, 1);
	assert_string_equal(lua_tostring(L, -1), hex);
	lua_rawgeti(L, -2, 2);
	lua_rawgeti(L, -3, 3);
	assert_string_equal(lua_tostring(L, -2), lua_tostring(L, -1)); /* quiet names no global */
	lua_rawgeti(L, -4, 4);
	lua_rawgeti(L, -5, 5);
	assert_string_not_equal(lua_tostring(L, -2), lua_tostring(L, -1)); /* loud does: after ".." */
	lua_rawgeti(L, -6, 6);
	assert_string_not_equal(lua_tostring(L, -1), hex); /* level2, reached through helper, changed */
	lua_pop(L, 7);
}

/*
 * A module table, by identity: only its 0.1.0 keys (file.list, .stat, .symlink are newer); a module
 * 0.1.0 did not have is its name. A recipe's own table of the same functions keeps all its keys.
 */
static void test_modules(void **state)
{
	static const char check[] =
		"local begin, finish, material = ...\n"
		"local fc = { src = 'x\\n', chunkname = '@t.lua', file = 't.lua' }\n"
		"return material('rec', 'm', { body = host }, fc), material('rec', 'm', { body = file }, fc),\n"
		"  material('rec', 'm', { body = { list = file.list } }, fc),\n"
		"  finish(begin('rec', 'm', { body = file }, fc), nil) == finish(begin('rec', 'm', { body = require('nodeinit.file') }, fc), nil)\n";
	lua_State *L = *state;
	const char *file;

	assert_int_equal(ni_lua_push_env(L), LUA_OK);
	assert_int_equal(ni_lua_load(L, "=modules", check, strlen(check), -1), LUA_OK);
	lua_remove(L, -2);
	lua_pushcfunction(L, ni_fingerprint_l_begin);
	lua_pushcfunction(L, ni_fingerprint_l_finish);
	lua_pushcfunction(L, ni_fingerprint_l_material);
	if (ni_lua_pcall(L, 3, 4) != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
	assert_string_equal(lua_tostring(L, -4), "nodeinit-step-1|s3:rec|s1:m|{|s4:body|=|m:host|,|}");
	file = lua_tostring(L, -3);
	assert_non_null(strstr(file, "|s11:ensure_line|=|cfunction|"));
	assert_non_null(strstr(file, "|s5:write|=|cfunction|"));
	assert_null(strstr(file, "s4:list"));
	assert_null(strstr(file, "s4:stat"));
	assert_null(strstr(file, "s7:symlink"));
	assert_string_equal(lua_tostring(L, -2), "nodeinit-step-1|s3:rec|s1:m|{|s4:body|=|{|s4:list|=|cfunction|u:=|cfunction|,|}|,|}");
	assert_true(lua_toboolean(L, -1));
	lua_pop(L, 4);
}

/* A material over the bound raises, naming the bound; streamed, memory stays that of one value. */
static void test_bound(void **state)
{
	static const char check[] =
		"local begin, finish = ...\n"
		"local s = string.rep('x', 16 * 1024 * 1024)\n"
		"local fc = { src = 'x\\n', chunkname = '@t.lua', file = 't.lua' }\n"
		"local ok, err = pcall(begin, 'rec', 'big', { params = { s, s, s, s, s } }, fc)\n"
		"assert(not ok)\n"
		"local h = begin('rec', 'ok', { params = { s, s } }, fc)\n"
		"local ok2, err2 = pcall(finish, h, { s = s })\n"
		"assert(ok2, err2)\n"
		"local ok3, err3 = pcall(finish, h, nil)\n"
		"assert(not ok3, 'finished twice')\n"
		"return err\n";
	lua_State *L = *state;

	run_chunk(L, "=bound", check);
	assert_non_null(strstr(lua_tostring(L, -1), "is larger than 64 MiB"));
	lua_pop(L, 1);
}

static void problem(void *ud, const char *file, int line, const char *msg)
{
	(void)ud;
	fail_msg("%s:%d: %s", file ? file : "-", line, msg);
}

/* Every step of the shipped recipes (default parameters), as 0.1.0 fingerprinted them; the module captures as pinned. */
static void test_recipes(void **state)
{
	lua_State *L = *state;
	size_t n = sizeof(recipes) / sizeof(recipes[0]), seen = 0;
	const char *dirs[] = { "recipes", "examples/recipes", "tests/fixtures/upgrade-v0.1.0/recipes",
			       "tests/fixtures/modules" };

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		int fd = open(dirs[d], O_PATH | O_DIRECTORY | O_CLOEXEC);
		struct ni_recipe_set set;
		size_t problems;

		assert_true(fd >= 0);
		assert_int_equal(ni_recipes_load(L, fd, &set, problem, NULL, &problems), 0);
		for (size_t i = 0; i < set.n; i++)
			for (size_t k = 0; k < set.recipes[i].n_steps; k++) {
				const struct ni_step *s = &set.recipes[i].steps[k];
				size_t j = 0;

				while (j < n && !(strcmp(recipes[j].dir, dirs[d]) == 0 &&
						  strcmp(recipes[j].recipe, set.recipes[i].name) == 0 &&
						  strcmp(recipes[j].step, s->name) == 0))
					j++;
				if (j == n)
					fail_msg("%s: %s/%s has no golden fingerprint (a new step? add it)", dirs[d],
						 set.recipes[i].name, s->name);
				if (strcmp(s->fingerprint, recipes[j].fingerprint) != 0)
					fail_msg("%s: %s/%s: fingerprint %s, pinned %s: upgraded nodes would re-run it",
						 dirs[d], set.recipes[i].name, s->name, s->fingerprint, recipes[j].fingerprint);
				seen++;
			}
		ni_recipe_set_free(L, &set);
		close(fd);
	}
	assert_int_equal(seen, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streamed_is_material, setup, teardown),
		cmocka_unit_test_setup_teardown(test_globals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modules, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
