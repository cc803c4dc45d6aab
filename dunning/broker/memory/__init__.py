"""The in-process broker: the "server" and its synchronous publisher (``server``), the asyncio
worker face (``client``), what a connection owns (``session``) and routing data (``routing``)."""
