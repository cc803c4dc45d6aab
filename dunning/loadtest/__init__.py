"""``dunning loadtest``: size a deployment against a local RabbitMQ and the loopback stand-ins.

    generator   synthetic intents (channel and jurisdiction mix), unique and fictional
    processes   the Twilio stand-in and ``dunning worker`` subprocesses
    run         publish at a target rate, sample queue depth, wait for every intent's outcome
    metrics     latency and counts from the ledger, duplicates from the stand-in's record
    report      live display, final table, JSON, optional plot (matplotlib)

Latency is defined as publish -> provider acceptance: from the intent's ``created_at`` (stamped
by the generator just before its batch is published) to ``finished_at`` of the ledger attempt
that recorded the send (written by the worker once the provider's API accepted the message).
Both clocks are this machine's UTC clock, which is why the load test targets loopback only.
"""

from dunning.loadtest.run import LoadTestConfig, LoadTestResult, run_loadtest

__all__ = ["LoadTestConfig", "LoadTestResult", "run_loadtest"]
