#!/bin/sh
# Prints a TAP plan, then its results as kcmp_test (Linux 6.1) does: "PASS:" lines and
# kselftest.h's counters, no test lines.
echo "TAP version 13"
echo "1..3"
echo "PASS: 0 returned as expected"
echo "PASS: 0 returned as expected"
echo "PASS: 0 returned as expected"
echo "# Totals: pass:3 fail:0 xfail:0 xpass:0 skip:0 error:0"
exit 0
