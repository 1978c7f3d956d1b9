#!/bin/sh
echo "sleeping"
sleep 30
