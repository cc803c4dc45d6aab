"""SMS and voice through Twilio: the HTTP client (``http``), what both adapters share (``base``),
and the adapters (``sms``, ``voice``)."""
