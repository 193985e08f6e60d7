#!/bin/sh
# hermes-inspector --demo on the built-in dict (no config: what the README
# tells a newcomer to run), in a real terminal: the demo's functions, tags,
# its own published counters and the invalidator's changes appear; the
# test invalidates tag reports (select, i, confirm) and sees its version
# change; the layout follows a resize down to 40x10 and back; ? shows the
# help; the screen has colour, and none with NO_COLOR=1 (reverse video
# instead, read from tmux's capture -e); q exits 0 with the terminal
# restored.  --demo --json is checked field by field.  A missing tmux fails the test.  Run by `make check`.
set -u

builddir=${HERMES_TEST_BUILDDIR:?HERMES_TEST_BUILDDIR is not set}
srcdir=${HERMES_TEST_SRCDIR:?HERMES_TEST_SRCDIR is not set}
insp=$builddir/hermes-inspector
unset HERMES_CONFIG
tmp=$(mktemp -d "${TMPDIR:-/tmp}/insp-demo.XXXXXX") || exit 99
. "$srcdir/tests/inspector/tmux.sh"
trap '$T kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
[ -x "$insp" ] || { echo "FAILED: $insp not built"; exit 99; }

# --- --demo --json: the demo's own process, field by field
"$insp" --demo --json >"$tmp/demo.json" 2>"$tmp/demo.err" &
pid=$!
wait $pid
status=$?
[ $status = 0 ] && pass "--demo --json exits 0" ||
    fail "--demo --json: exit status $status: $(cat "$tmp/demo.err")"
python3 - "$tmp/demo.json" "$pid" <<'EOP' && pass "--demo --json fields" || fail "--demo --json fields"
import json, sys
doc = json.load(open(sys.argv[1])); pid = int(sys.argv[2]); bad = []
def check(what, ok):
    if not ok: bad.append(what)
check("backend dict", doc["backend"] == "dict")
fns = {e["function"] for e in doc["entries"]}
check("the five demo functions have entries: %s" % sorted(fns),
      fns == {"user_profile", "user_feed", "product", "price", "report"})
tags = {t["name"]: t for t in doc["tags"]}
for t in ("users", "feed", "products", "pricing", "reports"):
    check("tag %s with entries" % t, t in tags and tags[t]["entries"] > 0)
for e in doc["entries"]:
    want = {"user_profile": ["users"], "user_feed": ["feed", "users"],
            "product": ["products"], "price": ["pricing", "products"],
            "report": ["reports", "users"]}[e["function"]]
    check("%s tags" % e["key"], sorted(t["name"] for t in e["tags"]) == want)
    check("%s size" % e["key"], e["size"] > 0)
procs = [p for p in doc["processes"] if p["pid"] == pid]
check("the demo process published its counters", len(procs) == 1)
if procs:
    p = procs[0]
    check("it computed", p["computations"] > 0)
    check("per-function counters",
          {f["name"] for f in p["functions"]} >= {"user_profile", "report"})
g = doc["garbage"]
check("garbage totals add up",
      g["entries"] == len(doc["entries"]) and
      g["stale"] == sum(1 for e in doc["entries"] if e["state"] == "stale"))
for b in bad:
    print("FAIL: --demo --json: " + b)
sys.exit(1 if bad else 0)
EOP

# --- the screen
start_pane "$(pane_command "'$insp' --demo -r 0.3")"
wait_screen "the title names the dict" 'hermes-inspector +dict:cache'
wait_screen "Entries lists the demo's functions" '^(user_profile|user_feed|product|price|report) '
wait_screen "Tags lists users" '^users +[^ ]+ +[0-9]+ +[0-9]+ '
wait_screen "Processes shows this process's counters" '^Processes 1 '
wait_screen "the invalidator's changes show in CHANGED" \
    '^(feed|pricing|users|products|reports) +[^ ]+ +[0-9]+ +[0-9]+ +[0-9.]+m?s\|'
keys / r e p o r t s Enter
wait_screen "the reports tag is selected" '^Tags 1/5 '
wait_screen "reports has a version" '^reports +[^( ][^ ]* +[0-9]+ '
before=$(field 2)
keys i
wait_screen "i asks before invalidating reports" "Invalidate tag 'reports'\\?"
keys y
wait_screen "the status line says it was done" 'tag reports invalidated'
deadline=$(($(date +%s) + WAIT_SECONDS))
while :; do
    now=$(screen | grep -E -m1 '^reports ' | awk '{print $2}')
    [ -n "$now" ] && [ "$now" != "$before" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        now=
        break
    fi
    sleep 0.1
done
[ -n "$now" ] && pass "reports' version changed ($before -> $now)" ||
    { fail "reports' version stayed $before"; dump_screen; }
keys Escape

# --- small screens: one pane; back to all of them
$T resize-window -t main -x 40 -y 10
wait_screen "at 40x10 only the focused pane is shown" '^Tags 5 '
screen | grep -q '^Processes' && fail "Processes still shown at 40x10" ||
    pass "the other panes are not drawn at 40x10"
keys Tab
wait_screen "Tab shows the next pane" '^Entries [0-9]+ '
$T resize-window -t main -x 12 -y 3
wait_screen "at 12x3: the title, one line of the pane, the status" '^Entries'
$T resize-window -t main -x 2 -y 2
wait_screen "at 2x2 it still draws" '^ T'
$T resize-window -t main -x 80 -y 24
wait_screen "at 80x24 every pane is back" '^Processes 1 '
keys '?'
wait_screen "? shows the help" 'hermes-inspector keys'
keys Down
wait_screen "any key closes it" '^Locks [0-9]+ '
# colour: tmux's capture with -e keeps the SGR sequences
esc=$(printf '\033')
$T capture-pane -e -p -t main | grep -Eq "$esc\\[([0-9;]*;)?(3[0-7]|4[0-7])m" &&
    pass "colours where the terminal has them" || fail "no colour on screen"
keys q
check_clean_exit

# --- NO_COLOR: the same distinctions in attributes, no colour
new_server
rm -f "$tmp/exit" "$tmp/stty.before" "$tmp/stty.after"
start_pane "$(pane_command "NO_COLOR=1 '$insp' --demo -r 0.3")"
wait_screen "with NO_COLOR the panes are drawn" '^Processes 1 '
sgr=$($T capture-pane -e -p -t main | grep -Eo "$esc\\[[0-9;]*m" | sort -u | tr -d "$esc" | tr '\n' ' ')
echo "$sgr" | grep -Eq '\[([0-9;]*;)?(3[0-7]|4[0-7])m' &&
    fail "NO_COLOR: colour sequences on screen: $sgr" ||
    pass "NO_COLOR: no colour"
echo "$sgr" | grep -Eq '\[([0-9;]*;)?7m' &&
    pass "NO_COLOR: reverse video marks the title, headers and selection" ||
    fail "NO_COLOR: no reverse video: $sgr"
keys q
check_clean_exit

if [ $failures -ne 0 ]; then
    echo "FAILED: $failures checks"
    exit 1
fi
echo "inspector --demo: ok"
