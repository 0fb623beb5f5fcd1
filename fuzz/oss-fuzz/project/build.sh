#!/bin/bash -eu
# OSS-Fuzz entry point (projects/msrtrace/build.sh, copied to $SRC/build.sh by the Dockerfile):
# the build lives in the msrtrace checkout, shared with ClusterFuzzLite.
exec "$SRC/msrtrace/fuzz/oss-fuzz/build.sh"
