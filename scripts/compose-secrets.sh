#!/usr/bin/env sh
# Create the secret files docker-compose.yml reads (secrets/*.txt), once per deployment.
#
#   scripts/compose-secrets.sh [FOLDER]     # default: secrets/ beside docker-compose.yml
#
# The RabbitMQ and PostgreSQL passwords, the webhook secret and the unsubscribe key are random; the broker and
# database URLs are built from them. The provider credentials (Twilio auth token, SMTP password)
# and the accounts source are left empty for the operator to fill in. An existing file is never
# overwritten, so running it again only adds what is missing. See secrets/README.md.
set -eu

folder=${1:-"$(dirname "$0")/../secrets"}
# The folder keeps other users of this host out. The files are bind-mounted one by one into the
# containers, whose processes do not run as this user, so they must be readable by others there.
mkdir -p "$folder"
chmod 700 "$folder"
umask 022

random() {
  # 32 characters from [A-Za-z0-9]: safe inside a URL without escaping.
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32
}

write() {  # write NAME VALUE: only when NAME.txt does not exist yet
  if [ -e "$folder/$1.txt" ]; then
    echo "kept    $folder/$1.txt"
  else
    printf '%s\n' "$2" >"$folder/$1.txt"
    echo "created $folder/$1.txt"
  fi
}

write rabbitmq_password "$(random)"
write postgres_password "$(random)"
write webhook_secret "$(random)"
write unsubscribe_secret "$(random)"
rabbitmq_password=$(cat "$folder/rabbitmq_password.txt")
postgres_password=$(cat "$folder/postgres_password.txt")
write broker_url "amqp://dunning:${rabbitmq_password}@rabbitmq:5672/%2F"
write database_url "postgresql+psycopg://dunning:${postgres_password}@postgres:5432/dunning"
write twilio_auth_token ""
write smtp_password ""
write accounts_source ""
