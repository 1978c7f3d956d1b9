#!/bin/sh
echo "checking frobnication"
echo "expected 1, got 2"
exit 1
