#!/bin/sh
# cc-capture installer: a private venv, the `ccd` command, the Claude Code hooks, the daemon.
#
#   ./install.sh                      install (idempotent) and start capturing
#   ./install.sh --train              ... and the training and export extras (CPU, or CUDA without unsloth)
#   ./install.sh --gpu                ... and the CUDA extra (unsloth, bitsandbytes) instead
#   ./install.sh --no-browse          ... without Datasette (`ccd browse`; about 11 MB, installed by default)
#   ./install.sh --uninstall          remove hooks, service, venv and `ccd`; keep captured data
#   ./install.sh --uninstall --purge  ... and delete captured data too
#
# Honours HOME, XDG_DATA_HOME, XDG_CONFIG_HOME, CC_CAPTURE_HOME and PYTHON (the interpreter, >= 3.10).
set -eu

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

action=install
purge=0
stack=""
browse=browse
for arg in "$@"; do
    case $arg in
        --uninstall) action=uninstall ;;
        --purge) purge=1 ;;
        --train) stack=train,export ;;
        --gpu) stack=gpu ;;
        --no-browse) browse="" ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option: $arg (see --help)" ;;
    esac
done
[ "$purge" = 0 ] || [ "$action" = uninstall ] || die "--purge goes with --uninstall"
extra=$(printf '%s' "$browse,$stack" | sed 's/^,//; s/,$//')
[ -z "$extra" ] || extra="[$extra]"

here=$(cd "$(dirname "$0")" && pwd)
data=${CC_CAPTURE_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/cc-capture}
config_home=${XDG_CONFIG_HOME:-$HOME/.config}
bindir=$HOME/.local/bin
venv=$data/venv
ccd=$venv/bin/ccd
unit=$config_home/systemd/user/cc-capture.service
plist=$HOME/Library/LaunchAgents/dev.cc-capture.ccd.plist
export CC_CAPTURE_HOME="$data"

has_systemd_user() {
    [ "$(uname -s)" != Darwin ] && command -v systemctl >/dev/null 2>&1 &&
        systemctl --user show-environment >/dev/null 2>&1
}

# Fill a template's @CCD@ and @DATA@ (escaped for sed; for XML when $3 = xml; for systemd's
# quoted strings when $3 = systemd, which refuses an executable path holding a quote or a
# backslash: /usr/bin/env runs such a one).
render() {
    c=$ccd d=$data run='"@CCD@"'
    if [ "${3:-}" = xml ]; then
        c=$(printf '%s' "$c" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g')
        d=$(printf '%s' "$d" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g')
    elif [ "${3:-}" = systemd ]; then
        case $c in *[\"\'\\]*) run='/usr/bin/env "@CCD@"' ;; esac
        c=$(printf '%s' "$c" | sed 's/[\\"]/\\&/g; s/%/%%/g; s/\$/$$/g')
        d=$(printf '%s' "$d" | sed 's/[\\"]/\\&/g; s/%/%%/g')
    fi
    c=$(printf '%s' "$c" | sed 's/[&|\\]/\\&/g')
    d=$(printf '%s' "$d" | sed 's/[&|\\]/\\&/g')
    sed "s|^ExecStart=\"@CCD@\"|ExecStart=$run|; s|@CCD@|$c|g; s|@DATA@|$d|g" "$1" >"$2"
    chmod 600 "$2"
}

install() {
    py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "$py not found: install Python 3.10 or newer, or set PYTHON"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$("$py" --version 2>&1) is too old: cc-capture needs Python 3.10 or newer (set PYTHON)"
    umask 077
    mkdir -p "$data" && chmod 700 "$data"
    say "==> Python environment in $venv"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || die "could not create a venv (on Debian/Ubuntu: apt install python3-venv)"
    if [ "$stack" = train,export ]; then
        # torch==2.13.0 is the CPU build: any other torch request pulls several GB of CUDA packages
        set -- -c "$here/constraints/cpu.txt"
        # llama-cpp-python (export) compiles llama.cpp on first install; pip caches the wheel
        say "    (the first time, the export extra compiles llama.cpp: many minutes)"
        . "$here/constraints/llama-cpp.sh"
    else
        set --
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$here$extra" "$@" ||
        die "pip could not install cc-capture$extra from $here"
    if [ "$stack" = train,export ]; then
        "$venv/bin/python" -m cc_capture.export.toolchain fetch >/dev/null ||
            die "could not fetch llama.cpp's converter from llama-cpp-python's source on PyPI (above: why)"
    fi
    # pip's launcher quotes a venv path that holds a space in "...": a `"`, `$`, backquote or
    # backslash in it breaks that launcher, so such a path gets one of our own.
    case $venv in *[\"\$\`\\]*)
        printf '#!/bin/sh\nexec %s -m cc_capture "$@"\n' "'$(printf '%s' "$venv/bin/python" | sed "s/'/'\\\\''/g")'" >"$ccd"
        chmod 700 "$ccd" ;;
    esac
    mkdir -p "$bindir"
    ln -sf "$ccd" "$bindir/ccd"
    say "==> ccd is at $bindir/ccd"
    case ":$PATH:" in *":$bindir:"*) ;; *) say "    (add $bindir to your PATH)" ;; esac

    say "==> Claude Code hooks"
    "$ccd" hooks install
    say "    Prefer the plugin? Run \`ccd hooks uninstall\`, then inside Claude Code:"
    say "      /plugin marketplace add $here"
    say "      /plugin install cc-capture@cc-capture"

    say "==> Daemon"
    if [ "$(uname -s)" = Darwin ]; then
        mkdir -p "$(dirname "$plist")"
        render "$here/daemon/dev.cc-capture.ccd.plist" "$plist" xml
        launchctl bootout "gui/$(id -u)/dev.cc-capture.ccd" >/dev/null 2>&1 || true
        launchctl bootstrap "gui/$(id -u)" "$plist" || die "launchctl could not load $plist"
        "$ccd" daemon status --wait >/dev/null || die "the daemon did not start (above: why; then rerun ./install.sh)"
        say "    launchd agent $plist"
    elif has_systemd_user; then
        mkdir -p "$(dirname "$unit")"
        render "$here/daemon/cc-capture.service" "$unit" systemd
        systemctl --user daemon-reload
        systemctl --user enable --now cc-capture.service || die "systemd could not start cc-capture.service"
        systemctl --user restart cc-capture.service
        "$ccd" daemon status --wait >/dev/null || die "the daemon did not start (above: why; then rerun ./install.sh)"
        say "    systemd user unit $unit"
    else
        "$ccd" daemon stop >/dev/null
        "$ccd" daemon start
        say "    no systemd user session or launchd: started in the background; run \`ccd daemon start\` after a reboot"
    fi
    say ""
    "$ccd" status
}

uninstall() {
    # The hooks go first, and if they can't, nothing goes: hooks left pointing at a deleted
    # emitter would fail on every Claude Code event.
    if [ -x "$ccd" ]; then
        "$ccd" hooks uninstall ||
            die "could not remove the cc-capture hooks from settings.json (see above); nothing was removed. Fix the file, then run this again"
    elif [ "$purge" = 1 ] && grep -qs cc-capture-emit.sh "${CLAUDE_CONFIG_DIR:-$HOME/.claude}/settings.json"; then
        die "settings.json still registers the cc-capture hooks and $ccd is missing to remove them; nothing was removed. Remove them by hand (or reinstall), then run this again"
    fi
    if [ "$(uname -s)" = Darwin ] && [ -f "$plist" ]; then
        launchctl bootout "gui/$(id -u)/dev.cc-capture.ccd" >/dev/null 2>&1 || true
        rm -f "$plist"
    fi
    if [ -f "$unit" ]; then
        if has_systemd_user; then systemctl --user disable --now cc-capture.service || true; fi
        rm -f "$unit"
        if has_systemd_user; then systemctl --user daemon-reload || true; fi
    fi
    if [ -x "$ccd" ]; then "$ccd" daemon stop || true; fi
    if [ -L "$bindir/ccd" ] && [ "$(readlink "$bindir/ccd")" = "$ccd" ]; then rm -f "$bindir/ccd"; fi
    rm -rf "$venv"
    if [ "$purge" = 1 ]; then
        rm -rf "$data"
        say "cc-capture removed, with its data ($data)"
    else
        say "cc-capture removed; captured data kept in $data (--uninstall --purge deletes it)"
    fi
}

"$action"
