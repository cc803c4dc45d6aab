"""Lawyer letters: the channel and its outbox (``channel``), the PDF (``pdf``), the CJK font
(``fonts``, ``font_outlines``), law-firm engagements (``law_firms``), email dispatch (``mail``).
"""
