#!/bin/sh
# A cassette-per-case suite driven with curl alone, against one long-lived cassette-proxy, the
# way a Node.js, Go or Java suite drives it from its own test runner (no restart per case).
#
#   cassette-proxy serve --admin --cassette-dir cassettes --upstream https://... &
#   RECORD=1 sh docs/curl_suite.sh   # record every case (needs the upstream and its key)
#   # then, offline, a proxy that records nothing (a cassette missing is a 501 naming it):
#   cassette-proxy serve --admin --cassette-dir cassettes --record-mode none --upstream https://... &
#   sh docs/curl_suite.sh            # replay every case
#
# PROXY (default http://127.0.0.1:8080) is the proxy; CASSETTE_PROXY_ADMIN_TOKEN, if set, is
# sent to the control API. Each case loads its own cassette (PUT /_proxy/cassette), makes its
# calls, checks what the proxy says it did, and saves it (DELETE). Exits 1 on the first
# check that fails, saying which.
set -eu

PROXY=${PROXY:-http://127.0.0.1:8080}
ID=resp_67cb71b351908190a308f3859487620d06981a8637e6bc44
if [ -n "${RECORD:-}" ]; then MODE=all; else MODE=none; fi
OUT=$(mktemp)
HEADERS=$(mktemp)
trap 'rm -f "$OUT" "$HEADERS"' EXIT

fail() { echo "FAILED: $*" >&2; cat "$OUT" >&2; echo >&2; exit 1; }

# control METHOD PATH [JSON] [curl options...]: a control API call; the HTTP status on stdout.
control() {
  method=$1 path=$2 body=${3:-}
  shift 2; [ $# -gt 0 ] && shift
  set -- -sS -o "$OUT" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' "$@"
  [ -n "$body" ] && set -- "$@" --data "$body"
  [ -n "${CASSETTE_PROXY_ADMIN_TOKEN:-}" ] &&
    set -- "$@" -H "Authorization: Bearer $CASSETTE_PROXY_ADMIN_TOKEN"
  curl "$@" "$PROXY/_proxy/$path"
}

# cancel [curl options...]: the call under test; the HTTP status on stdout.
cancel() {
  curl -sS -o "$OUT" -D "$HEADERS" -w '%{http_code}' -X POST \
    -H 'Authorization: Bearer dummy-key' "$@" "$PROXY/v1/responses/$ID/cancel"
}

expect() { # expect WHAT EXPECTED GOT
  [ "$2" = "$3" ] || fail "$1: expected $2, got $3"
}

has() { # has WHAT TEXT: the last answer's body contains TEXT
  grep -qF -- "$2" "$OUT" || fail "$1: the answer does not contain $2"
}

echo "== case: cancel once ($MODE)"
expect "load" 200 "$(control PUT cassette "{\"path\": \"cancel-once.yaml\", \"record_mode\": \"$MODE\"}")"
expect "cancel" 200 "$(cancel)"
has "cancel" '"status":"cancelled"'
expect "state" 200 "$(control GET cassette)"
if [ "$MODE" = none ]; then has "state" '"played":1'; else has "state" '"recorded":1'; fi
expect "save" 200 "$(control DELETE cassette)"

echo "== case: cancel twice, then start playback over ($MODE)"
expect "load" 200 "$(control PUT cassette "{\"path\": \"cancel-twice.yaml\", \"record_mode\": \"$MODE\"}")"
expect "first cancel" 200 "$(cancel)"
expect "second cancel" 200 "$(cancel)"
if [ "$MODE" = none ]; then
  expect "a third, not recorded" 501 "$(cancel)"
  has "the miss" '"code":"cassette_miss"'
  expect "rewind" 200 "$(control POST cassette/rewind)"
  has "rewind" '"played":0'
  expect "cancel after rewind" 200 "$(cancel)"
fi
expect "the last exchange" 200 "$(control GET 'exchanges?last=1')"
has "the last exchange" "/v1/responses/$ID/cancel"
expect "save" 200 "$(control DELETE cassette)"

echo "== case: two workers at once, a cassette each by header ($MODE)"
for worker in a b; do
  cancel -H "X-Cassette-Proxy-Cassette: worker-$worker" > "$OUT.$worker" &
done
wait
for worker in a b; do
  expect "worker $worker" 200 "$(cat "$OUT.$worker")"
  rm -f "$OUT.$worker"
done
if [ "$MODE" = none ]; then
  expect "a named cassette's state" 200 "$(control GET cassette '' -H 'X-Cassette-Proxy-Cassette: worker-a')"
  has "a named cassette's state" '"played":1'
fi
for worker in a b; do
  expect "save worker $worker" 200 "$(control DELETE cassette '' -H "X-Cassette-Proxy-Cassette: worker-$worker")"
done

echo "== case: the client sees a 429 once, then the answer ($MODE)"
expect "load" 200 "$(control PUT cassette "{\"path\": \"rate-limited.yaml\", \"record_mode\": \"$MODE\"}")"
expect "fault" 201 "$(control POST faults '{"path": "/v1/responses/*/cancel", "status": 429, "times": 1, "headers": {"Retry-After": "1"}}')"
expect "faulted" 429 "$(cancel)"
has "faulted" '"code":"rate_limit_exceeded"'
grep -qi '^retry-after: 1' "$HEADERS" || fail "faulted: no Retry-After: 1 header"
grep -qi '^x-proxy-source: proxy' "$HEADERS" || fail "faulted: not labelled X-Proxy-Source: proxy"
expect "retried" 200 "$(cancel)"
expect "faults spent" 200 "$(control GET faults)"
has "faults spent" '"faults":[]'
expect "save" 200 "$(control DELETE cassette)"

echo "all cases passed ($MODE)"
