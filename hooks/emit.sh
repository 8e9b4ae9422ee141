#!/bin/sh
# cc-capture hook emitter: one Claude Code hook payload (stdin) -> one journal record.
#
# It runs twice on every tool call and Claude Code waits for it, so it stays POSIX sh with a
# single `cat` (the same work as a `cat >/dev/null` hook). It never prints to stdout, never
# waits on the daemon and always exits 0. A record is <payload>"\n\036\n" in its own file,
# created exclusively (set -C) so concurrent hooks never share or clobber one; the daemon
# treats a file without the end marker as still being written.
#
# Usage: emit.sh [CC_CAPTURE_HOME]   (default: $CC_CAPTURE_HOME, else $XDG_DATA_HOME/cc-capture)
umask 077
home=${1:-${CC_CAPTURE_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/cc-capture}}
dir=$home/journal

fail() {
    # Drain stdin so Claude Code never writes into a closed pipe, and leave the reason
    # where `ccd status` reads it.
    cat >/dev/null 2>&1
    printf '%s\t%s\n' "$$" "$1" >>"$home/hook-errors.log" 2>/dev/null
    exit 0
}

[ -d "$dir" ] || mkdir -p "$dir" 2>/dev/null || fail "cannot create journal directory $dir"
set -C
n=0
# `true`, not `:`: a failed redirection on a special builtin would exit the shell.
until { true >"$dir/$$-$n.ev"; } 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -lt 64 ] || fail "cannot create a journal record in $dir"
done
{ cat && printf '\n\036\n'; } >>"$dir/$$-$n.ev" 2>/dev/null || fail "cannot write journal record $dir/$$-$n.ev"
exit 0
