#!/bin/bash -eu
# ClusterFuzzLite entry point (copied to $SRC/build.sh by the Dockerfile): the OSS-Fuzz build.
exec "$SRC/msrtrace/fuzz/oss-fuzz/build.sh"
