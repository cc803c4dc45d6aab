"""Loopback stand-ins for the providers: a Twilio-compatible API and an SMTP sink.

``TwilioStandIn`` lives in :mod:`dunning.sandbox.twilio_api`, ``SmtpSink`` in
:mod:`dunning.sandbox.smtp_sink`; ``dunning sandbox`` (or ``python -m dunning.sandbox``) runs both
(:mod:`dunning.sandbox.serve`).
Import the modules directly: this package imports nothing, so the CLI starts fast.
"""
