#!/usr/bin/env bash
# The team path of docs/teams.md, end to end, with acme's handler set:
#   team_cli_test.sh <acme_msrtrace> <acme_fuzzer_replay> <msrtrace>
# acme_msrtrace records, replays, shows and lists acme's own MSR; acme_fuzzer_replay is the real
# `replay`; the built-in msrtrace records with --handler-set and refuses acme's traces by name.
set -euo pipefail
cli=$1 replay=$2 msrtrace=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Whole outputs are captured before grep reads them: `cmd | grep -q` under pipefail fails when
# grep exits early and cmd gets SIGPIPE.
has() { grep -q -- "$1" <<<"$2"; }

has "handler set acme-vmm linked in" "$("$cli" --help)" || fail "usage does not name the set"

"$cli" msrs >"$tmp/msrs.txt"
grep -q "handler set acme-vmm" "$tmp/msrs.txt" || fail "msrs: no handler set in the heading"
grep -Eq "^0x4f000000 +ACME_WRITE_COUNTER +acme-vmm" "$tmp/msrs.txt" ||
  fail "msrs: no row for ACME_WRITE_COUNTER"
has '"name":"ACME_WRITE_COUNTER"' "$("$cli" msrs --format=json)" || fail "msrs json"

"$cli" record --workload=linux-boot -o "$tmp/boot.trace" | tee "$tmp/rec.txt"
grep -q "handler set acme-vmm" "$tmp/rec.txt" || fail "record did not use acme-vmm"
"$cli" replay --repeat=2 --resume-after=10 "$tmp/boot.trace" >"$tmp/replay.txt" ||
  fail "replay of acme's boot trace: $(cat "$tmp/replay.txt")"
grep -q "handler set acme-vmm" "$tmp/replay.txt" || fail "replay: wrong handler set"

has "for handler set acme-vmm (1 own index ranges)" "$("$cli" seeds "$tmp/seeds")" ||
  fail "seeds summary"
[[ -f $tmp/seeds/sweep-4f000000.trace && -f $tmp/seeds/linux-boot-intel-icx.trace ]] ||
  fail "seeds: missing sweep or golden recording"
"$cli" show --format=log "$tmp/seeds/sweep-4f000000.trace" >"$tmp/log.txt"
sed -n 1,3p "$tmp/log.txt"
grep -q "wrmsr ACME_WRITE_COUNTER (0x4f000000) <- 0x1: retired" "$tmp/log.txt" ||
  fail "show --format=log does not name ACME_WRITE_COUNTER"
has ACME_WRITE_COUNTER "$("$cli" stats "$tmp/seeds/sweep-own.trace")" || fail "stats"

# acme_fuzzer_replay is `acme_msrtrace replay`: same flags, same output.
has "--resume-after" "$("$replay" --help)" || fail "acme_fuzzer_replay --help"
"$replay" --format=json --repeat=2 "$tmp/seeds/sweep-own.trace" >"$tmp/r.json"
grep -q '"handler_set":"acme-vmm"' "$tmp/r.json" || fail "acme_fuzzer_replay --format=json"
diff <("$replay" "$tmp/seeds" | grep -v events/s) <("$cli" replay "$tmp/seeds" | grep -v events/s) ||
  fail "acme_fuzzer_replay and acme_msrtrace replay differ"

# replay --against=reference: acme's one intended deviation (IA32_BIOS_SIGN_ID writes #GP) is a
# disagreement without the allowlist and covered, with its count, under it.
allow=$(dirname "$0")/acme.allowlist
set +e
"$cli" replay --against=reference "$tmp/boot.trace" >"$tmp/against.txt" 2>&1
code=$?
set -e
[[ $code == 1 ]] || fail "replay --against without the allowlist: exit $code"
grep -q "wrmsr IA32_BIOS_SIGN_ID (0x8b): outcome: acme-vmm #GP(0), reference retired" \
  "$tmp/against.txt" || fail "replay --against: no BIOS_SIGN_ID disagreement"
grep -q "kvm: UCODE_REV" "$tmp/against.txt" || fail "replay --against: no KVM citation"
"$cli" replay --against=reference --allowlist="$allow" --format=json --junit="$tmp/j.xml" \
  "$tmp/boot.trace" "$tmp/seeds" >"$tmp/against.json" ||
  fail "replay --against with acme.allowlist: $(head -c 600 "$tmp/against.json")"
grep -q '"disagreement_count":"0"' "$tmp/against.json" || fail "replay --against json"
grep -Eq '"field":"outcome","reason":"[^"]*","matched":"[1-9]' "$tmp/against.json" ||
  fail "replay --against json: allowlist entry without its count"
grep -q 'name="0x8b IA32_BIOS_SIGN_ID"' "$tmp/j.xml" || fail "replay --against junit per index"
printf '0x8b outcome ok\n0x8b colour why\n' >"$tmp/bad.allow"
set +e
"$cli" replay --against=reference --allowlist="$tmp/bad.allow" "$tmp/boot.trace" \
  >/dev/null 2>"$tmp/err.txt"
code=$?
set -e
[[ $code == 2 ]] && grep -q "bad.allow:2: unknown field 'colour'" "$tmp/err.txt" ||
  fail "bad allowlist: exit $code, $(cat "$tmp/err.txt")"

# The built-in msrtrace: --handler-set for its own sets; a team's set is refused by name.
has "handler set reference+fifo" \
  "$("$msrtrace" record --golden=faults --handler-set=reference+fifo -o "$tmp/fifo.trace")" ||
  fail "msrtrace record --handler-set=reference+fifo"
set +e
"$msrtrace" replay "$tmp/boot.trace" 2>"$tmp/err.txt" >/dev/null
code=$?
set -e
[[ $code == 2 ]] && grep -q "unknown handler set 'acme-vmm'" "$tmp/err.txt" ||
  fail "msrtrace replay of an acme trace: exit $code, $(cat "$tmp/err.txt")"
echo "team CLI: ok"
