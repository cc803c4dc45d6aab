"""Rate limits before each send: the limiters (``limiter`` in-process, ``redis`` shared by every
process) and which limits a channel obeys (``config``)."""
