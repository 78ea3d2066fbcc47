# Progress of a long build step, sourced by tools/build_caffe.sh (and its tests).
#
#   with_progress CMD ARGS...   runs CMD with its output appended to $LOG; whenever the build's own "[ NN%]"
#                               lines (cmake's makefiles print them per target) move by $PROGRESS_STEP percent or
#                               more, prints "[build_caffe] <step>: NN% (elapsed)" to stderr; at the end the total.
# PROGRESS_NAME names the script in the lines (default build_caffe), PROGRESS_STEP the percent between them
# (default 5). Nothing here enters a build's cache key: it only reads what make prints.

elapsed() {
  local s=$(( SECONDS - $1 ))
  printf '%dm%02ds' $(( s / 60 )) $(( s % 60 ))
}

with_progress() {
  local start=$SECONDS shown=-100 line pct
  "$@" 2>&1 | while IFS= read -r line; do
    printf '%s\n' "$line" >>"$LOG"
    if [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      pct=$(( 10#${BASH_REMATCH[1]} ))
      if (( pct >= shown + ${PROGRESS_STEP:-5} || (pct == 100 && shown != 100) )); then
        shown=$pct
        printf '[%s] %s: %3d%% (%s elapsed)\n' "${PROGRESS_NAME:-build_caffe}" "$STEP" "$pct" "$(elapsed "$start")" >&2
      fi
    fi
  done
  echo "[${PROGRESS_NAME:-build_caffe}] $STEP: done in $(elapsed "$start")" >&2
}
