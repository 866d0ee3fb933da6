#!/bin/bash
# The startup-script images' manager loop, written from DESIGN.md "Legacy mode", for `make bench` to
# compare nodeinit's idle loop with. Like the images: the checkpoint name is the MD5 of the script plus
# a newline, computed once; then, every interval, `nsenter ... stat CHECKPOINT` in the host's
# namespaces; if it is missing, `bash -c "$STARTUP_SCRIPT"` there, `touch` the checkpoint on success.
# Differences from the images, for a fake host: TARGET_PID (the images hard-code 1) and
# CHECK_INTERVAL_SECONDS (30 there) come from the environment.
set -o errexit
set -o nounset
set -o pipefail

if [[ -z "${STARTUP_SCRIPT+x}" ]]; then
  echo "STARTUP_SCRIPT is not set" >&2
  exit 1
fi
TARGET_PID="${TARGET_PID:-1}"
CHECK_INTERVAL_SECONDS="${CHECK_INTERVAL_SECONDS:-30}"
CHECKPOINT_PATH="${CHECKPOINT_PATH:-/tmp/startup-script.kubernetes.io_$(md5sum <<<"${STARTUP_SCRIPT}" | cut -c-32)}"
EXEC=(nsenter -t "${TARGET_PID}" -m -u -i -n -p --)

do_startup_script() {
  local err=0

  "${EXEC[@]}" bash -c "${STARTUP_SCRIPT}" && err=0 || err=$?
  if [[ ${err} != 0 ]]; then
    echo "!!! startup-script failed! exit code '${err}'" 1>&2
    return 1
  fi

  "${EXEC[@]}" touch "${CHECKPOINT_PATH}"
  echo "!!! startup-script succeeded!" 1>&2
  return 0
}

while :; do
  "${EXEC[@]}" stat "${CHECKPOINT_PATH}" > /dev/null 2>&1 && err=0 || err=$?
  if [[ ${err} != 0 ]]; then
    do_startup_script
  fi

  sleep "${CHECK_INTERVAL_SECONDS}"
done
