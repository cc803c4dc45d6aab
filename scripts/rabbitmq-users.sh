#!/usr/bin/env bash
# Create one RabbitMQ user per dunning component with least-privilege permissions.
#
#   scripts/rabbitmq-users.sh [-p VHOST] [--dry-run]
#
# Passwords come from the environment (never the command line, which `ps` shows):
#   DUNNING_MQ_PASSWORD_ADMIN, _EVALUATOR, _WEBHOOK, _SMS, _VOICE, _EMAIL, _LETTER
# A user whose password variable is unset is skipped. Run as a user allowed to use rabbitmqctl.
#
# Permissions are regexes on resource names: configure / write / read (RabbitMQ access control).
#   dunning-admin      declares the topology (`dunning topology declare`), reads status, replays
#                      dead letters: configure, write and read on dunning.*
#   dunning-evaluator  publishes intents: write dunning.intents only
#   dunning-webhook    publishes receipts: write dunning.receipts only
#   dunning-<channel>  consumes dunning.<channel>; publishes retries/waits (dunning.delay.*),
#                      dead letters (dunning.dlx) and receipts (dunning.receipts)
# Declaring the topology is the admin's job; see docs/operations.md ("RabbitMQ users").
set -euo pipefail

vhost="/"
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    -p|--vhost) vhost="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

ctl() {
  if [ "$dry_run" = 1 ]; then
    # Print the command with any password elided.
    local shown=("$@")
    [ "${shown[0]}" = add_user ] || [ "${shown[0]}" = change_password ] && shown[2]='***'
    echo "rabbitmqctl ${shown[*]}"
  else
    rabbitmqctl -q "$@"
  fi
}

# user  password-variable  configure  write  read
create() {
  local user="$1" var="$2" configure="$3" write="$4" read="$5"
  local password="${!var:-}"
  if [ -z "$password" ]; then
    echo "skip $user: $var is not set" >&2
    return 0
  fi
  if [ "$dry_run" = 0 ] && rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$user"; then
    ctl change_password "$user" "$password"
  else
    ctl add_user "$user" "$password"
  fi
  ctl set_permissions -p "$vhost" "$user" "$configure" "$write" "$read"
  echo "$user on $vhost: configure='$configure' write='$write' read='$read'"
}

none='^$'
create dunning-admin DUNNING_MQ_PASSWORD_ADMIN '^dunning\..*' '^dunning\..*' '^dunning\..*'
create dunning-evaluator DUNNING_MQ_PASSWORD_EVALUATOR "$none" '^dunning\.intents$' "$none"
create dunning-webhook DUNNING_MQ_PASSWORD_WEBHOOK "$none" '^dunning\.receipts$' "$none"
for channel in sms voice email letter; do
  upper=$(echo "$channel" | tr '[:lower:]' '[:upper:]')
  create "dunning-$channel" "DUNNING_MQ_PASSWORD_$upper" "$none" \
    '^(dunning\.delay\..+|dunning\.dlx|dunning\.receipts)$' "^dunning\\.$channel\$"
done
