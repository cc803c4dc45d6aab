#!/usr/bin/env bash
# The sample book through a real RabbitMQ: migrate the ledger, declare the topology, start the
# sandbox stand-ins (Twilio API, SMTP sink), the receipts webhook and the SMS, voice and email
# workers, evaluate config/accounts.sample.csv, wait until every intent is settled, print
# `dunning receipts`. Background processes are stopped on any exit.
#
#   scripts/try-rabbitmq.sh
#
# Everything is set from the environment (defaults in brackets), never by editing this file:
#   DUNNING_BROKER_URL    [amqp://guest:guest@127.0.0.1:5672/%2F]
#   DUNNING_DATABASE_URL  [postgresql+psycopg://postgres@127.0.0.1:5432/test]
#   DUNNING_NOW           [2026-11-28T09:00:00+08:00] where every process's clock starts
#   TRY_TWILIO_PORT [8099]  TRY_SMTP_PORT [1025]  TRY_WEBHOOK_PORT [8080]  (loopback)
#   TRY_TIMEOUT_S   [120]   seconds allowed for start-up and for the intents to settle
#   TRY_LOG_DIR     [var/try-rabbitmq]  one log file per background process
#   TRY_VENV        [.venv] the virtualenv holding `dunning`
# Other DUNNING_* settings (docs/configuration.md) reach every process as they are.
#
# Exit status 0 when every intent settled and none failed or died; non-zero otherwise (a
# process that exits early or a deadline that passes names the log to read).
set -euo pipefail
cd "$(dirname "$0")/.."

export DUNNING_BROKER_URL="${DUNNING_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
export DUNNING_DATABASE_URL="${DUNNING_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
# The sample book is written for 2026-11-28, and the evaluation day is the clock's (UTC) day.
# 09:00 in Shanghai (01:00 UTC) is inside the CN window (08:00-22:00) and, on the evening
# before, inside every US one (08:00-21:00: 20:00 in New York, 17:00 in Los Angeles); it is
# 01:00 in London, so the UK account's email is deferred until 08:00 there.
export DUNNING_NOW="${DUNNING_NOW:-2026-11-28T09:00:00+08:00}"
twilio_port="${TRY_TWILIO_PORT:-8099}"
smtp_port="${TRY_SMTP_PORT:-1025}"
webhook_port="${TRY_WEBHOOK_PORT:-8080}"
timeout_s="${TRY_TIMEOUT_S:-120}"
logs="${TRY_LOG_DIR:-var/try-rabbitmq}"
dunning="${TRY_VENV:-.venv}/bin/dunning"
python="${TRY_VENV:-.venv}/bin/python"

# Workers send to the stand-ins; the Twilio stand-in posts its signed callbacks to the webhook,
# which checks the signatures against this same public URL.
export DUNNING_TWILIO_API_BASE="http://127.0.0.1:$twilio_port"
export DUNNING_SMTP_HOST=127.0.0.1 DUNNING_SMTP_PORT="$smtp_port"
export DUNNING_WEBHOOK_PUBLIC_URL="http://127.0.0.1:$webhook_port"
# A trial beside the stand-ins: the webhook may run on their public secrets (never in production).
export DUNNING_SANDBOX=true

pids=()
names=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

start() {  # start NAME COMMAND...: COMMAND in the background, its output in $logs/NAME.log
  local name=$1
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

check_alive() {  # exit 1, showing its log, when a background process has ended
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "error: ${names[$i]} exited; the end of $logs/${names[$i]}.log:" >&2
      tail -n 20 "$logs/${names[$i]}.log" >&2
      exit 1
    fi
  done
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() {  # wait_until WHAT COMMAND...: poll COMMAND until it succeeds or the deadline
  local what=$1
  shift
  until "$@"; do
    check_alive
    if ((SECONDS >= deadline)); then
      echo "error: $what not reached within ${timeout_s}s (logs in $logs/)" >&2
      exit 1
    fi
    sleep 0.5
  done
}

ledger_states() {  # "channel state count", one line per channel and intent state
  "$python" - <<'PY'
import os

from dunning.ledger import Ledger

ledger = Ledger.open(os.environ["DUNNING_DATABASE_URL"])
for (channel, state), count in sorted(ledger.counts_by_state().items()):
    print(channel, state, count)
ledger.close()
PY
}

settled() {  # nothing queued or being sent, and every SMS and call has its final receipt
  ledger_states | awk '
    $2 == "queued" || $2 == "sending" || ($2 == "sent" && $1 != "email") { open += $3 }
    END { exit open > 0 }'
}

if [ ! -x "$dunning" ]; then
  echo "error: $dunning not found: run \`make install\` first, or set TRY_VENV" >&2
  exit 1
fi
for port in "$twilio_port" "$smtp_port" "$webhook_port"; do
  if listening "$port"; then
    echo "error: port $port is in use; choose others with TRY_*_PORT" >&2
    exit 1
  fi
done
mkdir -p "$logs"
deadline=$((SECONDS + timeout_s))

echo "== ledger and topology (clock starts at $DUNNING_NOW)"
"$dunning" db upgrade
"$dunning" topology declare | tail -n 1

echo "== sandbox, webhook and workers (logs in $logs/)"
# Started together: each process's clock starts at DUNNING_NOW when the process starts, so the
# seconds between their starts show up in the receipts' send-to-delivered times.
start sandbox "$dunning" sandbox --twilio-port "$twilio_port" --smtp-port "$smtp_port"
start webhook "$dunning" webhook --port "$webhook_port"
for channel in sms voice email; do
  start "worker-$channel" "$dunning" worker "$channel"
done
wait_until "the Twilio stand-in" listening "$twilio_port"
wait_until "the SMTP sink" listening "$smtp_port"
wait_until "the webhook" listening "$webhook_port"

echo "== evaluate config/accounts.sample.csv"
"$dunning" evaluate config/accounts.sample.csv

echo "== waiting until every intent is settled"
wait_until "every intent settled" settled
states=$(ledger_states)
echo "intents by channel and state:"
echo "$states" | sed 's/^/  /'

read -r since until < <("$python" -c '
import sys
from datetime import UTC, datetime, timedelta

now = datetime.fromisoformat(sys.argv[1]).astimezone(UTC)
print(now.isoformat(), (now + timedelta(days=1)).isoformat())
' "$DUNNING_NOW")
"$dunning" receipts --since "$since" --until "$until"

if awk '$2 ~ /^(failed|undelivered|dead|unknown)$/ { bad += $3 } END { exit bad == 0 }' \
  <<<"$states"; then
  echo "error: some intents failed or died (see the states above and the worker logs)" >&2
  exit 1
fi
