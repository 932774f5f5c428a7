#!/bin/sh
# Stands in for moe-compile's C++ compiler: like g++'s linker, a process of
# its own writes the output (-o's path), here after 2 s (7 s, ignoring
# SIGTERM, with STUBBORN_LINKER=1). It says in the output's folder when it
# has started, and when it has written.
out=
while [ $# -gt 0 ]; do
  [ "$1" = -o ] && out=$2
  shift
done
folder=$(dirname "$out")
if [ "${STUBBORN_LINKER:-}" = 1 ]; then
  sh -c "trap '' TERM; sleep 7; echo linked > '$out'; echo > '$folder/linker-finished'" &
else
  sh -c "sleep 2; echo linked > '$out'; echo > '$folder/linker-finished'" &
fi
echo > "$folder/compiler-started"
wait
