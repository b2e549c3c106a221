"""Readable pictures of an evaluation run: the self-contained ``report.html`` of one eval folder
and the side-by-side comparison of several (``harness report``)."""
