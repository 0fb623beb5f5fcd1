#!/bin/bash -eu
# ClusterFuzzLite entry point: the same build as OSS-Fuzz.
exec "$SRC/msrtrace/fuzz/oss-fuzz/build.sh"
