# Sourced by the conformance_<backend>.sh tests: the verdict on one run of
# hermes-conformance against a real server.
#
# conformance_verdict NAME STATUS OUT ERR CHECK...
#   Prints the kit's report (OUT), then fails the test (exit 1) unless the
#   kit exited 0, reported no FAIL line, ended with a clean "N passed, 0
#   failed" summary, and ran and passed every named CHECK (a check that
#   quietly stopped running would otherwise pass).  ERR is the kit's stderr,
#   shown on failure.  A skipped check fails the test too, unless the
#   script set conformance_skips=allowed (and says why).
conformance_verdict() {
    cv_name=$1 cv_status=$2 cv_out=$3 cv_err=$4
    shift 4
    cat "$cv_out"
    cv_summary=$(tail -n 1 "$cv_out")
    cv_clean='^[1-9][0-9]* passed, 0 failed$'
    [ "${conformance_skips:-}" = allowed ] &&
        cv_clean='^[1-9][0-9]* passed, 0 failed(, [0-9]+ skipped)?$'
    if [ "$cv_status" -ne 0 ] || grep -q '^FAIL ' "$cv_out" ||
        ! echo "$cv_summary" | grep -Eq "$cv_clean"; then
        echo "FAILED: hermes-conformance $cv_name: exit $cv_status, '$cv_summary'"
        cat "$cv_err"
        exit 1
    fi
    for cv_check in "$@"; do
        grep -q "^ok   $cv_check" "$cv_out" || {
            echo "FAILED: $cv_name: check $cv_check did not run and pass"
            exit 1
        }
    done
}
