# Helpers for the inspector's end-to-end tests in a real terminal, sourced
# by tui_*.sh: a private tmux server (its own socket, no user config) runs
# one 80x24 pane; the tests send keys and read the screen with
# capture-pane, always waiting on a condition with a deadline, never on a
# fixed sleep.  Needs $tmp (a directory the caller removes) and fails
# loudly without tmux.

command -v tmux >/dev/null 2>&1 || {
    echo "FAILED: tmux not found: apt-get install tmux"
    exit 1
}
# Sanitizer builds on a loaded machine are slow: generous deadlines, as
# they only bound a failure.
WAIT_SECONDS=${HERMES_TEST_WAIT_SECONDS:-60}
T="tmux -L hermes-insp-$$ -f /dev/null"
servers=0
failures=0

fail() {
    echo "FAIL: $1"
    failures=$((failures + 1))
}

pass() {
    echo "PASS: $1"
}

screen() {
    $T capture-pane -p -t main 2>/dev/null
}

dump_screen() {
    echo "  the screen was:"
    screen | sed 's/^/  | /'
}

# start_pane COMMAND: runs COMMAND (a shell command line) in an 80x24
# pane; TERM inside is tmux's default, "screen".
start_pane() {
    $T new-session -d -x 80 -y 24 -s main "$1" || {
        echo "FAILED: tmux cannot start a session"
        exit 1
    }
}

# new_server: ends this test's tmux server and moves to a fresh socket for
# the next start_pane.  kill-server returns before the old server has
# closed its socket, and a session started on that socket at once can meet
# the dying server ("server exited unexpectedly", seen on a loaded
# machine).
new_server() {
    $T kill-server 2>/dev/null
    servers=$((servers + 1))
    T="tmux -L hermes-insp-$$-$servers -f /dev/null"
}

keys() {
    $T send-keys -t main "$@"
}

# wait_screen DESCRIPTION EGREP-REGEX: polls the screen until a line
# matches; prints the line (for the caller to read fields from).
wait_screen() {
    deadline=$(($(date +%s) + WAIT_SECONDS))
    while :; do
        line=$(screen | grep -E -m1 -- "$2") && {
            pass "$1"
            printf '%s\n' "$line" >"$tmp/line"
            return 0
        }
        if [ "$(date +%s)" -ge "$deadline" ]; then
            fail "$1: no line matching '$2' within $WAIT_SECONDS s"
            dump_screen
            return 1
        fi
        sleep 0.1
    done
}

# wait_file DESCRIPTION FILE: polls until FILE exists and is not empty.
wait_file() {
    deadline=$(($(date +%s) + WAIT_SECONDS))
    while [ ! -s "$2" ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            fail "$1: $2 did not appear within $WAIT_SECONDS s"
            return 1
        fi
        sleep 0.1
    done
    pass "$1"
}

# The inspector's exit and the terminal it leaves: the pane's command is
# wrapped by pane_command, which saves the tty's settings before and after
# and the exit status.
pane_command() { # INSPECTOR-COMMAND-LINE -> a command line for start_pane
    printf 'stty -g >%s/stty.before; %s; echo $? >%s/exit; stty -g >%s/stty.after; exec sleep 600' \
        "$tmp" "$1" "$tmp" "$tmp"
}

check_clean_exit() {
    wait_file "q exits" "$tmp/exit" || return 1
    status=$(cat "$tmp/exit")
    [ "$status" = 0 ] && pass "exit status 0" ||
        fail "exit status $status, expected 0"
    wait_file "the tty settings are read after exit" "$tmp/stty.after" || return 1
    cmp -s "$tmp/stty.before" "$tmp/stty.after" &&
        pass "the terminal's settings are restored" ||
        fail "stty settings differ after exit: $(cat "$tmp/stty.before") vs $(cat "$tmp/stty.after")"
    alt=$($T display -p -t main '#{alternate_on}')
    [ "$alt" = 0 ] && pass "the alternate screen is left" ||
        fail "the pane is still in the alternate screen"
}

# field N: the Nth whitespace-separated field of the last matched line.
field() {
    awk -v n="$1" '{print $n}' "$tmp/line"
}
