#!/bin/sh
# A stand-in for an installed kselftest's run_kselftest.sh (Linux 6.1), for the agent's tests:
# the same options (-l, -c COLLECTION, -t COLLECTION:TEST) and the same TAP as
# kselftest/runner.sh prints, without timeouts.
BASE_DIR=$(cd "$(dirname "$0")" && pwd)
cd "$BASE_DIR" || exit 1
available=$(cat kselftest-list.txt)
selected=""
while [ $# -gt 0 ]; do
	case "$1" in
	-l) echo "$available"; exit 0 ;;
	-c)
		found=$(echo "$available" | grep "^$2:")
		[ -n "$found" ] || { echo "No such collection '$2'" >&2; exit 1; }
		selected="$selected $found"; shift 2 ;;
	-t)
		echo "$available" | grep -qx "$2" || { echo "No such test '$2'" >&2; exit 1; }
		selected="$selected $2"; shift 2 ;;
	*) echo "usage: $0 [-l] [-c COLLECTION] [-t COLLECTION:TEST]" >&2; exit 1 ;;
	esac
done
[ -n "$selected" ] || selected="$available"
echo "TAP version 13"
echo "1..$(echo $selected | wc -w)"
n=0
rcfile=$(mktemp)
for entry in $selected; do
	n=$((n + 1))
	collection=${entry%%:*}
	test=${entry#*:}
	echo "# selftests: $collection: $test"
	(cd "$collection" && ./"$test" 2>&1; echo $? >"$rcfile") | while IFS= read -r line; do
		echo "# $line"
	done
	rc=$(cat "$rcfile")
	if [ "$rc" -eq 0 ]; then
		echo "ok $n selftests: $collection: $test"
	elif [ "$rc" -eq 4 ]; then
		echo "ok $n selftests: $collection: $test # SKIP"
	else
		echo "not ok $n selftests: $collection: $test # exit=$rc"
	fi
done
rm -f "$rcfile"
