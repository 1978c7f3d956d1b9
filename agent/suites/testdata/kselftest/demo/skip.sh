#!/bin/sh
echo "needs a frobnicator"
exit 4
